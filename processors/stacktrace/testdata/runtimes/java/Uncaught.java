// An uncaught exception with a cause and a suppressed exception, as the JVM's default
// handler prints it on stderr. Run with: java Uncaught.java
import java.io.IOException;
import java.io.UncheckedIOException;

public class Uncaught {
    static void read(String path) throws IOException {
        throw new IOException("cannot read " + path);
    }

    static void load(String path) {
        try {
            read(path);
        } catch (IOException e) {
            UncheckedIOException u = new UncheckedIOException("config load failed", e);
            u.addSuppressed(new IllegalStateException("cleanup failed"));
            throw u;
        }
    }

    public static void main(String[] args) {
        System.out.println("INFO before crash");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> System.out.println("INFO after crash")));
        load("/etc/app.conf");
    }
}
