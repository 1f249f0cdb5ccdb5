// Unit templates (systemd/*.service) are imported as text: `with { type: "text" }` embeds them in the binary.
declare module "*.service" {
  const text: string;
  export default text;
}
