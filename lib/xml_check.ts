/**
 * Test helper: a minimal XML well-formedness check for the SVG files sparq writes (no XML parser is
 * available without dependencies).
 * @module
 */

/**
 * Minimal well-formedness check: one root element, every tag closed in order, attributes quoted,
 * no raw `<` or `&` in text. Returns the element names seen.
 */
export function checkXml(doc: string): string[] {
  const body = doc.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(body)) !== null) {
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      if (/&(?!amp;|lt;|gt;|quot;|apos;)/.test(m[5])) throw new Error(`bare & in text: ${m[5]}`);
      if (stack.length === 0 && m[5].trim() !== "") throw new Error(`text outside the root: ${m[5]}`);
      continue;
    }
    const [, close, name, , self] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> does not match`);
    } else {
      if (stack.length === 0) roots++;
      names.push(name);
      if (!self) stack.push(name);
    }
  }
  if (pos !== body.length) throw new Error(`unparsable at ${pos}: ${body.slice(pos, pos + 40)}`);
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(", ")}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}
