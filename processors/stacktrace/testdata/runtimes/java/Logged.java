// An exception logged with java.util.logging: the two-line record header (date, class
// and method, then "SEVERE: message") followed by the stack trace. Run with:
// java Logged.java
import java.util.logging.Level;
import java.util.logging.Logger;

public class Logged {
    private static final Logger LOG = Logger.getLogger(Logged.class.getName());

    static int parse(String s) {
        return Integer.parseInt(s);
    }

    public static void main(String[] args) {
        System.out.println("INFO before crash");
        LOG.info("started");
        try {
            parse("12x");
        } catch (NumberFormatException e) {
            LOG.log(Level.SEVERE, "bad quantity in order 42", e);
        }
        LOG.warning("retrying order 42");
    }
}
