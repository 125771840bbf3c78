import type { ClusterId } from "@freshrec/core";

/** One token of one or more candidate answers; answers sharing a prefix share its nodes, so it is evaluated once. */
export interface TrieNode {
  /** The token this node adds (-1 at the root: the prompt's last position). */
  token: number;
  /** Tokens from the root (0 at the root). */
  depth: number;
  children: TrieNode[];
  /** The cluster whose answer ends here (answers are never prefixes of one another: TextPromptEncoder.answers). */
  cluster: ClusterId | null;
}

/** The trie of the given answers, children in token order. */
export function buildAnswerTrie(answers: Iterable<readonly [ClusterId, readonly number[]]>): TrieNode {
  const root: TrieNode = { token: -1, depth: 0, children: [], cluster: null };
  for (const [cluster, tokens] of answers) {
    let node = root;
    for (const token of tokens) {
      let child = node.children.find((c) => c.token === token);
      if (!child) node.children.push((child = { token, depth: node.depth + 1, children: [], cluster: null }));
      node = child;
    }
    node.cluster = cluster;
  }
  const sort = (n: TrieNode) => {
    n.children.sort((a, b) => a.token - b.token);
    n.children.forEach(sort);
  };
  sort(root);
  return root;
}
