// operations.js: every GraphQL operation the example app sends, besides
// the session ones in gatehouse-client.js. Kept apart so that
// scripts/build-manifest.mjs can list them all for the gateway's trusted
// documents (persisted-documents.json).

export const ME = `query Me { me {
  id username email emailVerified roles active createdAt mfaEnabled recoveryCodesLeft
  linkedIdentities { provider email linkedAt }
  displayName bio avatarUrl updatedAt
} }`;
export const BEGIN_TOTP = 'mutation BeginTotp { beginTotpEnrollment { secret otpauthUri } }';
export const CONFIRM_TOTP = 'mutation ConfirmTotp($code: String!) { confirmTotpEnrollment(code: $code) }';
export const EXTERNAL_PROVIDERS = 'query ExternalLoginProviders { externalLoginProviders }';
export const EXTERNAL_LOGIN_URL =
  'mutation ExternalLoginUrl($provider: String!, $redirectUri: String!) { externalLoginUrl(provider: $provider, redirectUri: $redirectUri) }';
export const UNLINK_IDENTITY = 'mutation UnlinkIdentity($provider: String!) { unlinkIdentity(provider: $provider) }';
export const DISABLE_MFA = 'mutation DisableMfa($password: String!) { disableMfa(password: $password) }';
export const SESSIONS = 'query Sessions { me { id sessions { id createdAt lastUsedAt expiresAt userAgent current } } }';
export const SIGN_UP = 'mutation SignUp($input: SignUpInput!) { signUp(input: $input) }';
export const VERIFY = 'mutation Verify($email: String!, $code: String!) { verifyEmail(email: $email, code: $code) }';
export const RESEND = 'mutation Resend($email: String!) { resendVerificationEmail(email: $email) }';
export const UPDATE_PROFILE = `mutation UpdateProfile($input: UpdateProfileInput!) {
  updateProfile(input: $input) { id displayName bio avatarUrl updatedAt }
}`;
export const REVOKE = 'mutation Revoke($id: ID!) { revokeSession(id: $id) }';
export const USERS = `query Users($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id username email displayName roles active } }
  }
}`;
export const SET_ROLES = 'mutation SetRoles($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id roles } }';
