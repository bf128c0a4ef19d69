// A real OpenID Connect provider for the SSO tests: panva's oidc-provider on loopback, with its
// development login and consent pages. An account's id is the email typed at login; an email
// starting with "unverified" comes back with email_verified: false.
// Usage: node provider.mjs <port> <redirect_uri> <client_id> <client_secret> <jwks json>
import Provider from "oidc-provider";

const [port, redirectUri, clientId, clientSecret, jwks] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  jwks: JSON.parse(jwks),
  pkce: { required: () => true },
  // The email in the ID token itself, as Google, Okta and Entra ID send it for the email scope.
  conformIdTokenClaims: false,
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  features: { devInteractions: { enabled: true } },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: id,
      email_verified: !id.startsWith("unverified"),
      name: id.split("@")[0],
    }),
  }),
  ttl: { IdToken: 300, AuthorizationCode: 60, Session: 600, Interaction: 600, Grant: 600 },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
