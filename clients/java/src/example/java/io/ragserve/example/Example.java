package io.ragserve.example;

import io.ragserve.client.ApiException;
import io.ragserve.client.RagserveClient;
import io.ragserve.client.model.ChatCompletion;
import io.ragserve.client.model.ChatRequest;
import io.ragserve.client.model.Citation;
import io.ragserve.client.model.CollectionInfo;
import io.ragserve.client.model.RetrieveRequest;
import io.ragserve.client.model.SearchHit;
import io.ragserve.client.model.StreamedAnswer;

/**
 * A tour of the client: collections, retrieval, a grounded answer streamed token by token with its
 * citations, a whole answer, and a typed error.
 *
 * <pre>
 * java -cp build/java/ragserve-client.jar:build/java/app-classes:/usr/share/java/jackson-databind.jar:\
 *   /usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar \
 *   io.ragserve.example.Example http://127.0.0.1:8000 "What does exit code 137 mean for a pod?"
 * </pre>
 */
public final class Example {
    private Example() {}

    public static void main(String[] args) {
        String url = args.length > 0 ? args[0] : "http://127.0.0.1:8000";
        String question = args.length > 1 ? args[1] : "What does exit code 137 mean for a pod?";
        RagserveClient client = RagserveClient.builder().baseUrl(url).build(); // RAGSERVE_API_KEY if set

        System.out.println("== collections");
        for (CollectionInfo c : client.collections()) {
            System.out.printf("%-12s %3d documents %4d chunks (%s)%n", c.name(), c.documents(), c.chunks(),
                    c.embeddingModel());
        }

        System.out.println("== retrieve: " + question);
        for (SearchHit h : client.retrieve(RetrieveRequest.of(question, "default", 3)).results()) {
            System.out.printf("%.4f  %s  %s%n", h.score(), h.documentId(), oneLine(h.text(), 60));
        }

        System.out.println("== rag/default, streamed");
        StreamedAnswer a = client.chatStream(ChatRequest.builder("rag/default")
                .user(question).maxTokens(64).temperature(0).build())
                .collect(delta -> {
                    System.out.print(delta);
                    System.out.flush();
                });
        System.out.println();
        System.out.printf("finish_reason=%s usage=%s chunks=%d%n", a.finishReason(), a.usage(), a.chunks());
        for (Citation c : a.citations()) {
            System.out.printf("[%d] %s%s (score %.4f)%n", c.index(), c.source(),
                    Boolean.TRUE.equals(c.cited()) ? " (cited)" : "", c.score());
        }

        System.out.println("== rag/default, whole answer");
        ChatCompletion r = client.chat(ChatRequest.builder("rag/default")
                .user("How do I upload files over HTTP for ingestion?").maxTokens(64).temperature(0).build());
        System.out.println(r.content());
        System.out.printf("finish_reason=%s usage=%s citations=%s%n", r.finishReason(), r.usage(),
                r.citations().stream().map(Citation::documentId).toList());

        System.out.println("== a typed error");
        try {
            client.chat(ChatRequest.builder("no-such-model").user("hi").build());
        } catch (ApiException e) {
            System.out.printf("%s status=%d type=%s code=%s param=%s%n  %s%n", e.getClass().getSimpleName(),
                    e.status(), e.type(), e.code(), e.param(), e.errorMessage());
        }
    }

    private static String oneLine(String s, int n) {
        String t = s.replace('\n', ' ').strip();
        return t.length() <= n ? t : t.substring(0, n) + "...";
    }
}
