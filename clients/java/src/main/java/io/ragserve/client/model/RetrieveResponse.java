package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** The passages a grounded answer would see, best first. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record RetrieveResponse(
        @JsonProperty("collection") String collection,
        @JsonProperty("mode") String mode,
        @JsonProperty("results") List<SearchHit> results) {}
