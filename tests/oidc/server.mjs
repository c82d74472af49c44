// A real OpenID Connect provider for the SSO tests: node server.mjs PORT USERS_JSON
//
// oidc-provider with its development interactions (a login form: any password, a
// known user name; then a consent page), dynamic client registration (each test
// registers the server it starts, with that server's callback URL), PKCE required,
// and RP-initiated logout. Users and their claims come from USERS_JSON:
// {"alice": {"email": "alice@example.com", "groups": ["release-managers"]}, ...}
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const users = JSON.parse(process.argv[3] || "{}");
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [],
  cookies: { keys: ["interlock-tests-only"] },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  scopes: ["openid", "offline_access", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: user.name || id,
          email: user.email,
          email_verified: true,
          groups: user.groups || [],
        };
      },
    };
  },
});
provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
