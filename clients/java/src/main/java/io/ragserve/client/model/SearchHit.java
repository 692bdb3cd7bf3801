package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/** One retrieved passage; {@code score} is higher-is-better. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record SearchHit(
        @JsonProperty("chunk_id") String chunkId,
        @JsonProperty("document_id") String documentId,
        @JsonProperty("source") String source,
        @JsonProperty("page") Integer page,
        @JsonProperty("score") double score,
        @JsonProperty("text") String text,
        @JsonProperty("metadata") Map<String, Object> metadata) {}
