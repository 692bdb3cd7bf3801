package io.ragserve.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Reads the {@code data} of Server-Sent Events, one event at a time. */
final class SseReader implements AutoCloseable {
    private final InputStream body;
    private final BufferedReader reader;

    SseReader(InputStream body) {
        this.body = body;
        this.reader = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8));
    }

    /** The data of the next event (multi-line data joined by newlines), or null at the end of the stream. */
    String next() {
        StringBuilder data = null;
        try {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.isEmpty()) {
                    if (data != null) {
                        return data.toString();
                    }
                    continue;
                }
                if (line.startsWith(":")) {
                    continue; // comment / keep-alive
                }
                if (line.startsWith("data:")) {
                    String v = line.substring(5);
                    v = v.startsWith(" ") ? v.substring(1) : v;
                    data = data == null ? new StringBuilder(v) : data.append('\n').append(v);
                }
                // other fields (event:, id:, retry:) are not used by ragserve's streams
            }
        } catch (IOException e) {
            throw new UncheckedIOException("the stream broke off", e);
        }
        return data == null ? null : data.toString();
    }

    static String abbreviate(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    @Override
    public void close() {
        try {
            body.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }
}
