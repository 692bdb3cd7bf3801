package io.ragserve.client;

import java.time.Duration;

/** HTTP 403: the key's role or collections do not allow this. */
public class PermissionDeniedException extends ApiException {
    private static final long serialVersionUID = 1L;

    public PermissionDeniedException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
