package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/** Body of {@code POST /v1/rca} ({@code stream} is set by the client method used). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RcaRequest(
        @JsonProperty("alert") Alert alert,
        @JsonProperty("evidence") RcaEvidence evidence,
        @JsonProperty("collection") String collection,
        @JsonProperty("options") RcaOptions options) {

    public static RcaRequest of(Alert alert) {
        return new RcaRequest(alert, null, null, null);
    }

    public RcaRequest withEvidence(RcaEvidence e) {
        return new RcaRequest(alert, e, collection, options);
    }

    public RcaRequest withCollection(String c) {
        return new RcaRequest(alert, evidence, c, options);
    }

    public RcaRequest withOptions(RcaOptions o) {
        return new RcaRequest(alert, evidence, collection, o);
    }
}
