package io.ragserve.client;

import java.time.Duration;

/** HTTP 404: unknown model, collection, document, job or analysis. */
public class NotFoundException extends ApiException {
    private static final long serialVersionUID = 1L;

    public NotFoundException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
