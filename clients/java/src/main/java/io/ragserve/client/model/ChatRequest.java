package io.ragserve.client.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A {@code POST /v1/chat/completions} request. Grounding: use the model {@code rag/<collection>},
 * or any model plus {@link Builder#rag(RagOptions)}. Anything ragserve passes through to vLLM
 * ({@code response_format}, {@code tools}, {@code ignore_eos}, ...) goes in {@link Builder#extra}.
 */
public final class ChatRequest {
    private final String model;
    private final List<ChatMessage> messages;
    private final Integer maxTokens;
    private final Double temperature;
    private final Double topP;
    private final Long seed;
    private final List<String> stop;
    private final RagOptions rag;
    private final boolean streamUsage;
    private final Map<String, Object> extra;

    private ChatRequest(Builder b) {
        this.model = Objects.requireNonNull(b.model, "model");
        if (b.messages.isEmpty()) {
            throw new IllegalArgumentException("a chat request needs at least one message");
        }
        this.messages = List.copyOf(b.messages);
        this.maxTokens = b.maxTokens;
        this.temperature = b.temperature;
        this.topP = b.topP;
        this.seed = b.seed;
        this.stop = b.stop == null ? null : List.copyOf(b.stop);
        this.rag = b.rag;
        this.streamUsage = b.streamUsage;
        this.extra = Map.copyOf(b.extra);
    }

    public static Builder builder(String model) {
        return new Builder().model(model);
    }

    public String model() {
        return model;
    }

    /** The JSON body; {@code stream} selects SSE. */
    public ObjectNode toJson(ObjectMapper mapper, boolean stream) {
        ObjectNode body = mapper.createObjectNode();
        extra.forEach((k, v) -> body.set(k, mapper.valueToTree(v)));
        body.put("model", model);
        body.set("messages", mapper.valueToTree(messages));
        if (maxTokens != null) {
            body.put("max_tokens", maxTokens);
        }
        if (temperature != null) {
            body.put("temperature", temperature);
        }
        if (topP != null) {
            body.put("top_p", topP);
        }
        if (seed != null) {
            body.put("seed", seed);
        }
        if (stop != null) {
            body.set("stop", mapper.valueToTree(stop));
        }
        if (rag != null) {
            body.set("rag", mapper.valueToTree(rag));
        }
        body.put("stream", stream);
        if (stream && streamUsage) {
            body.putObject("stream_options").put("include_usage", true);
        }
        return body;
    }

    public static final class Builder {
        private String model;
        private final List<ChatMessage> messages = new ArrayList<>();
        private Integer maxTokens;
        private Double temperature;
        private Double topP;
        private Long seed;
        private List<String> stop;
        private RagOptions rag;
        private boolean streamUsage = true;
        private final Map<String, Object> extra = new LinkedHashMap<>();

        public Builder model(String m) {
            this.model = m;
            return this;
        }

        public Builder message(ChatMessage m) {
            messages.add(m);
            return this;
        }

        public Builder system(String content) {
            return message(ChatMessage.system(content));
        }

        public Builder user(String content) {
            return message(ChatMessage.user(content));
        }

        public Builder maxTokens(int n) {
            this.maxTokens = n;
            return this;
        }

        public Builder temperature(double t) {
            this.temperature = t;
            return this;
        }

        public Builder topP(double p) {
            this.topP = p;
            return this;
        }

        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        public Builder stop(List<String> s) {
            this.stop = s;
            return this;
        }

        /** ragserve's extension: ground the answer in a collection (see {@link RagOptions}). */
        public Builder rag(RagOptions r) {
            this.rag = r;
            return this;
        }

        /** When streaming, ask for a final usage chunk ({@code stream_options.include_usage}); on by default. */
        public Builder streamUsage(boolean on) {
            this.streamUsage = on;
            return this;
        }

        /** Any other body field, sent as is (e.g. {@code response_format}, {@code tools}, {@code ignore_eos}). */
        public Builder extra(String field, Object value) {
            extra.put(field, value);
            return this;
        }

        public ChatRequest build() {
            return new ChatRequest(this);
        }
    }
}
