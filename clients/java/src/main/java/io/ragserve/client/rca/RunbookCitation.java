package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/** A retrieved knowledge-base passage judged relevant to the alert; evidence cites it as {@code runbook:<index>}. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record RunbookCitation(
        @JsonProperty("index") int index,
        @JsonProperty("ref") String ref,
        @JsonProperty("chunk_id") String chunkId,
        @JsonProperty("document_id") String documentId,
        @JsonProperty("source") String source,
        @JsonProperty("page") Integer page,
        @JsonProperty("score") double score,
        @JsonProperty("text") String text) {}
