// The commented default configuration, embedded in the binary as text (not parsed at import):
// `config init` writes it byte for byte, comments included.
import text from "./default.yaml" with { type: "text" };

export const DEFAULT_CONFIG_YAML: string = text as unknown as string;
