// A java.rmi.RemoteException chain: its message ends "; nested exception is:" followed by
// the cause on the next line, and the cause is printed again as "Caused by:".
// Run with: java Nested.java
import java.rmi.RemoteException;
import java.rmi.ServerException;

public class Nested {
    static void call() throws RemoteException {
        try {
            throw new java.net.ConnectException("Connection refused to host: 10.0.0.7");
        } catch (java.net.ConnectException e) {
            throw new RemoteException("lookup failed", e);
        }
    }

    public static void main(String[] args) throws Exception {
        System.out.println("INFO before crash");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> System.out.println("INFO after crash")));
        try {
            call();
        } catch (RemoteException e) {
            throw new ServerException("server call failed", e);
        }
    }
}
