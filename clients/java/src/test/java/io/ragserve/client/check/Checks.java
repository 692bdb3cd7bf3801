package io.ragserve.client.check;

import java.util.ArrayList;
import java.util.List;

/** A minimal check runner (no JUnit download): named checks, PASS/FAIL lines, a failure count. */
final class Checks {
    @FunctionalInterface
    interface Body {
        String run() throws Exception;
    }

    @FunctionalInterface
    interface Call {
        Object call() throws Exception;
    }

    private final List<String> failures = new ArrayList<>();
    private int passed;

    /** Runs one check; its body returns a one-line detail for the log, or throws on failure. */
    void run(String name, Body body) {
        long t0 = System.nanoTime();
        try {
            String detail = body.run();
            passed++;
            System.out.printf("PASS %-34s %5d ms  %s%n", name, (System.nanoTime() - t0) / 1_000_000,
                    detail == null ? "" : detail);
        } catch (Throwable t) {
            failures.add(name);
            System.out.printf("FAIL %-34s %5d ms  %s%n", name, (System.nanoTime() - t0) / 1_000_000, t);
            t.printStackTrace(System.out);
        }
        System.out.flush();
    }

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    static <T> T expect(Class<T> type, Call body) {
        try {
            body.call();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            throw new AssertionError("expected " + type.getSimpleName() + " but got " + t, t);
        }
        throw new AssertionError("expected " + type.getSimpleName() + " but the call succeeded");
    }

    static String clip(String s, int n) {
        String one = s.replace('\n', ' ');
        return one.length() <= n ? one : one.substring(0, n) + "...";
    }

    /** Prints the summary; the process exit code (0 only when every check passed). */
    int finish() {
        System.out.printf("%d passed, %d failed%s%n", passed, failures.size(),
                failures.isEmpty() ? "" : " " + failures);
        return failures.isEmpty() && passed > 0 ? 0 : 1;
    }
}
