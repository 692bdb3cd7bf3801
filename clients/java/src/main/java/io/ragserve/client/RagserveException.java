package io.ragserve.client;

/** Base of every error this client raises: transport failures here, HTTP errors in {@link ApiException}. */
public class RagserveException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RagserveException(String message) {
        super(message);
    }

    public RagserveException(String message, Throwable cause) {
        super(message, cause);
    }
}
