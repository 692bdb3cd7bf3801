package io.ragserve.client;

import java.time.Duration;

/** HTTP 400 Bad Request: bad parameters, malformed JSON, a prompt longer than the context. */
public class BadRequestException extends ApiException {
    private static final long serialVersionUID = 1L;

    public BadRequestException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
