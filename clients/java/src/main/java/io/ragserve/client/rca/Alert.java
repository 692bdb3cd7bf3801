package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.time.Instant;
import java.util.Map;

/**
 * One alert as Prometheus Alertmanager sends it. {@code labels.alertname} is required; times are
 * RFC 3339 strings; {@code fingerprint} is computed by the server from the labels when null.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Alert(
        @JsonProperty("status") String status,
        @JsonProperty("labels") Map<String, String> labels,
        @JsonProperty("annotations") Map<String, String> annotations,
        @JsonProperty("startsAt") String startsAt,
        @JsonProperty("endsAt") String endsAt,
        @JsonProperty("generatorURL") String generatorURL,
        @JsonProperty("fingerprint") String fingerprint) {

    /** A firing alert that started now. */
    public static Alert firing(Map<String, String> labels, Map<String, String> annotations) {
        return new Alert("firing", labels, annotations, Instant.now().toString(), null, null, null);
    }

    /** The same alert, resolved now. */
    public Alert resolved() {
        return new Alert("resolved", labels, annotations, startsAt, Instant.now().toString(), generatorURL,
                fingerprint);
    }

    public Alert withFingerprint(String fp) {
        return new Alert(status, labels, annotations, startsAt, endsAt, generatorURL, fp);
    }
}
