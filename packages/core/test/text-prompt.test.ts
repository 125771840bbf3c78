import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  answerText,
  completionText,
  defaultTextTemplate,
  describeClusters,
  FreshrecError,
  loadTextTemplate,
  parseTextTemplate,
  renderTextMessages,
  ValidationError,
} from "../src/index.js";

const clusters = [
  { id: 0, keywords: ["baking", "bread"] },
  { id: 1, keywords: ["cooking", "recipes"] },
  { id: 2, keywords: ["hiking"] },
  { id: 3, keywords: ["{count} braces"] },
];
const template = defaultTextTemplate();
const descriptions = describeClusters(clusters, template);

describe("text prompt", () => {
  it("describes the last k clusters oldest first, then the top-n RAG lines with counts", () => {
    const m = renderTextMessages(template, descriptions, { history: [2, 0, 1], rag: [{ clusterId: 2, count: 10 }, { clusterId: 3, count: 8 }] }, { k: 2, ragLines: 1 });
    expect(m.system).toBe(template.system);
    const user = m.user;
    expect(user.indexOf("- baking, bread")).toBeGreaterThan(-1);
    expect(user.indexOf("- baking, bread")).toBeLessThan(user.indexOf("- cooking, recipes"));
    // k = 2: the oldest cluster (hiking) is only in the RAG line; top 1 only: cluster 3 is left out
    expect(user).toContain("- hiking (10 times)");
    expect(user.match(/hiking/g)).toHaveLength(1);
    expect(user).not.toContain("braces");
    const two = renderTextMessages(template, descriptions, { history: [0, 1], rag: [{ clusterId: 2, count: 10 }, { clusterId: 3, count: 8 }] }, { k: 2, ragLines: 2 });
    // a description with braces is substituted once, never read as a placeholder
    expect(two.user).toContain("- {count} braces (8 times)");
  });

  it("says when retrieval found nothing, for null and empty lists alike", () => {
    for (const rag of [null, []]) {
      const m = renderTextMessages(template, descriptions, { history: [0, 1], rag }, { k: 2, ragLines: 1 });
      expect(m.user).toContain(template.retrievalEmpty);
      expect(m.user).not.toContain(template.retrievalHeader);
    }
  });

  it("renders the completion prompt and both answer styles from the template", () => {
    const m = renderTextMessages(template, descriptions, { history: [0], rag: null }, { k: 2, ragLines: 1 });
    expect(completionText(m)).toBe(`${template.system}\n\n${m.user}`);
    expect(answerText(template, "completion", descriptions.get(1)!)).toBe(" cooking, recipes\n");
    expect(answerText(template, "chat", descriptions.get(1)!)).toBe("cooking, recipes\n");
  });

  it("refuses a cluster without a description, naming it", () => {
    expect(() => renderTextMessages(template, descriptions, { history: [0, 9], rag: null }, { k: 2, ragLines: 1 })).toThrow(/history: cluster 9 has no description/);
    expect(() => renderTextMessages(template, descriptions, { history: [0], rag: [{ clusterId: 7, count: 1 }] }, { k: 2, ragLines: 1 })).toThrow(FreshrecError);
  });

  it("loads a replacement template file and refuses bad ones, naming the file and field", () => {
    const dir = mkdtempSync(join(tmpdir(), "freshrec-template-"));
    const good = join(dir, "mine.json");
    writeFileSync(good, JSON.stringify({ ...template, prompt: "Seen:\n{history}\n{retrieval}\nNext:" }));
    const mine = loadTextTemplate(good);
    expect(renderTextMessages(mine, descriptions, { history: [0], rag: null }, { k: 2, ragLines: 1 }).user.startsWith("Seen:\n- baking, bread")).toBe(true);

    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ ...template, historyLine: "- {keyword}" }));
    expect(() => loadTextTemplate(bad)).toThrow(ValidationError);
    expect(() => loadTextTemplate(bad)).toThrow(/bad\.json: historyLine: unknown placeholder \{keyword\}.*historyLine: must contain \{keywords\}/);
    expect(() => parseTextTemplate({ ...template, version: 2 }, "inline")).toThrow(/inline: version/);
    expect(() => parseTextTemplate({ ...template, extra: 1 }, "inline")).toThrow(/inline/);
    writeFileSync(bad, "{ not json");
    expect(() => loadTextTemplate(bad)).toThrow(/not a readable JSON text template/);
  });
});
