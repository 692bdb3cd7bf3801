package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A passage a grounded answer was given; the answer refers to it as {@code [index]}.
 * {@code cited} says whether the answer actually did.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Citation(
        @JsonProperty("index") int index,
        @JsonProperty("chunk_id") String chunkId,
        @JsonProperty("document_id") String documentId,
        @JsonProperty("source") String source,
        @JsonProperty("page") Integer page,
        @JsonProperty("score") double score,
        @JsonProperty("text") String text,
        @JsonProperty("cited") Boolean cited) {}
