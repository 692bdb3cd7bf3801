package io.ragserve.client;

import java.time.Duration;

/** HTTP 401: a missing or unknown API key. */
public class AuthenticationException extends ApiException {
    private static final long serialVersionUID = 1L;

    public AuthenticationException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
