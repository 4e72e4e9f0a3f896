// The interop matrix's Java client: JSSE (Java's own TLS stack) through
// SSLSocket, as a client author's code would use it. Compiled by the
// harness (javac) into its cache and run once for every case:
//
//   java -cp CACHE InteropClient CASES.tsv   ->  one JSON object per line
//
// A case is a line of tab-separated fields: id, host, port, server name,
// CA file, maximum version ("" or "1.2"), twice ("0" or "1"), the
// request in base64, and the timeout (connecting, and each read) in ms.
// Each trusts only its CA file, checks the host name (endpoint
// identification "HTTPS"), sends the request and reads the reply to the
// end; twice on one SSLContext (whose session cache offers
// the first session) where the case asks.

import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class InteropClient {
    static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static SSLContext context(String caFile) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        int i = 0;
        try (InputStream in = new FileInputStream(caFile)) {
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("ca" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        return context;
    }

    static String[] once(SSLContext context, String[] f) throws Exception {
        try (Socket raw = new Socket()) {
            int timeout = Integer.parseInt(f[8]);
            raw.connect(new InetSocketAddress(f[1], Integer.parseInt(f[2])), timeout);
            raw.setSoTimeout(timeout);
            try (SSLSocket tls = (SSLSocket) context.getSocketFactory()
                    .createSocket(raw, f[3], Integer.parseInt(f[2]), true)) {
                SSLParameters parameters = tls.getSSLParameters();
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                parameters.setServerNames(List.of(new SNIHostName(f[3])));
                if (f[5].equals("1.2")) parameters.setProtocols(new String[] {"TLSv1.2"});
                tls.setSSLParameters(parameters);
                tls.startHandshake();
                tls.getOutputStream().write(Base64.getDecoder().decode(f[7]));
                tls.getOutputStream().flush();
                ByteArrayOutputStream data = new ByteArrayOutputStream();
                tls.getInputStream().transferTo(data);
                return new String[] {data.toString(StandardCharsets.UTF_8), tls.getSession().getProtocol()};
            }
        }
    }

    public static void main(String[] args) throws Exception {
        for (String line : Files.readAllLines(Paths.get(args[0]))) {
            String[] f = line.split("\t", -1);
            String error = null;
            String[] last = {"", null};
            try {
                SSLContext context = context(f[4]);
                for (int n = 0; n < (f[6].equals("1") ? 2 : 1); n++) last = once(context, f);
            } catch (Exception e) {
                error = e.toString();
            }
            String reply = last[0].length() > 200 ? last[0].substring(last[0].length() - 200) : last[0];
            System.out.println("{\"id\": " + quote(f[0]) + ", \"accepted\": " + (error == null)
                + ", \"error\": " + quote(error) + ", \"reply\": " + quote(reply)
                + ", \"version\": " + quote(last[1]) + ", \"resumed\": null}");
        }
    }
}
