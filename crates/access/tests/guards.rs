//! Directive guards applied to operations, as the gateway does before planning.

use graphql_tools::parser::{parse_query, parse_schema};
use graphql_tools::static_graphql::{query, schema};

use gatehouse_access::guards::{authorize, Caller, Denial, DeniedField, GuardError, GuardIndex};

const SCHEMA: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY)
  @link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)
{ query: Query mutation: Mutation }

directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
directive @requiresScopes(scopes: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM

scalar Secret @requiresScopes(scopes: [["vault"]])

type Query {
  public: String
  me: User @authenticated
  users: [User!]! @requiresScopes(scopes: [["a", "b"], ["c"]])
  node(id: ID!): Node
  search: [Result!]!
  report: Report
}

type Mutation {
  signUp: Boolean!
  deleteEverything: Boolean! @requiresScopes(scopes: [["sys_admin"]])
  login: Payload!
  loginMaybe: Payload
}

type Payload { token: String! account: Account! accounts: [Account!]! loose: [Account] }

type Account {
  id: ID!
  sessions: [Session!]! @authenticated
  note: String @authenticated
}

type Session { id: ID! }

interface Node { id: ID! }

type User implements Node {
  id: ID!
  name: String
  email: String @authenticated
  secret: Secret
}

type Report implements Node @requiresScopes(scopes: [["admin"]]) {
  id: ID!
  total: Int
}

type Post implements Node { id: ID! @requiresScopes(scopes: [["editor"]]) title: String }

union Result = User | Post | Report
"#;

fn index() -> GuardIndex {
    let doc: schema::Document = parse_schema::<String>(SCHEMA).unwrap().into_static();
    GuardIndex::from_schema(&doc)
}

fn op(text: &str) -> query::Document {
    parse_query::<String>(text).unwrap().into_static()
}

fn denied(text: &str, caller: &Caller) -> Vec<(String, Denial)> {
    let outcome = authorize(&index(), &op(text), None, caller).unwrap();
    outcome.denied.into_iter().map(|DeniedField { path, denial, .. }| (path.join("."), denial)).collect()
}

fn filtered(text: &str, caller: &Caller) -> String {
    let outcome = authorize(&index(), &op(text), None, caller).unwrap();
    outcome.filtered.map(|d| d.to_string()).unwrap_or_else(|| "<unchanged>".into())
}

#[test]
fn an_anonymous_caller_loses_authenticated_fields_and_keeps_the_rest() {
    let denials = denied("{ public me { id } }", &Caller::anonymous());
    assert_eq!(denials, vec![("me".into(), Denial::Unauthenticated)]);
    let kept = filtered("{ public me { id } }", &Caller::anonymous());
    assert!(kept.contains("public") && !kept.contains("me"), "{kept}");
}

#[test]
fn nothing_changes_for_a_caller_allowed_everything() {
    let caller = Caller::with_scopes(["a", "b", "c", "vault", "admin"]);
    assert_eq!(filtered("{ public me { id email secret } users { name } }", &caller), "<unchanged>");
}

#[test]
fn requires_scopes_is_an_or_of_ands() {
    let q = "{ users { id } }";
    assert!(denied(q, &Caller::with_scopes(["a", "b"])).is_empty(), "{{a,b}} satisfies [a,b]");
    assert!(denied(q, &Caller::with_scopes(["c"])).is_empty(), "{{c}} satisfies [c]");
    assert_eq!(denied(q, &Caller::with_scopes(["a"])), vec![("users".into(), Denial::MissingScopes)]);
    assert_eq!(denied(q, &Caller::with_scopes(["b", "x"])), vec![("users".into(), Denial::MissingScopes)]);
    assert_eq!(denied(q, &Caller::anonymous()), vec![("users".into(), Denial::Unauthenticated)]);
}

#[test]
fn guards_on_scalars_and_object_types_apply_wherever_they_are_selected() {
    let caller = Caller::with_scopes(["user"]);
    assert_eq!(denied("{ me { id secret } }", &caller), vec![("me.secret".into(), Denial::MissingScopes)]);
    assert_eq!(denied("{ report { id } }", &caller), vec![("report".into(), Denial::MissingScopes)]);
}

#[test]
fn paths_use_aliases_and_fragments_are_inlined() {
    let text = r#"
        query Q { who: me { ...Parts } }
        fragment Parts on User { id mail: email }
    "#;
    let outcome = authorize(&index(), &op(text), Some("Q"), &Caller::anonymous()).unwrap();
    assert_eq!(
        outcome.denied,
        vec![DeniedField { path: vec!["who".into()], denial: Denial::Unauthenticated, nulls_root_field: false }]
    );

    let caller = Caller::with_scopes(["user"]);
    let text = "query Q { me { ...P } } fragment P on User { id mail: email secret }";
    let outcome = authorize(&index(), &op(text), Some("Q"), &caller).unwrap();
    assert_eq!(
        outcome.denied,
        vec![DeniedField {
            path: vec!["me".into(), "secret".into()],
            denial: Denial::MissingScopes,
            nulls_root_field: false
        }]
    );
    let printed = outcome.filtered.unwrap().to_string();
    assert!(!printed.contains("fragment"), "fragments are inlined: {printed}");
    assert!(printed.contains("mail: email") && !printed.contains("secret"), "{printed}");
}

#[test]
fn a_fragment_on_a_guarded_type_is_removed_with_each_of_its_fields_reported() {
    let caller = Caller::with_scopes(["user"]);
    let text = "{ search { ... on Post { title } ... on Report { id total } } }";
    // (Post.id is guarded too, but it is not selected here.)
    let denials = denied(text, &caller);
    assert_eq!(
        denials,
        vec![("search.id".into(), Denial::MissingScopes), ("search.total".into(), Denial::MissingScopes)]
    );
    let printed = filtered(text, &caller);
    assert!(printed.contains("on Post") && !printed.contains("on Report"), "{printed}");
}

#[test]
fn a_field_on_an_interface_is_guarded_when_any_implementation_guards_it() {
    // Node.id carries no guard on the interface, but Post.id does: through the
    // interface, any Node may turn out to be a Post.
    let denials = denied("{ node(id: 1) { id } }", &Caller::with_scopes(["user"]));
    assert_eq!(denials, vec![("node.id".into(), Denial::MissingScopes)]);
    assert!(denied("{ node(id: 1) { id } }", &Caller::with_scopes(["editor"])).is_empty());
    // User.email is guarded; selecting it through the interface via a fragment is caught.
    let denials = denied("{ node(id: 1) { ... on User { email } } }", &Caller::anonymous());
    assert_eq!(denials, vec![("node.email".into(), Denial::Unauthenticated)]);
}

#[test]
fn an_object_whose_every_field_is_denied_keeps_only_its_typename() {
    let printed = filtered("{ me { email } }", &Caller { authenticated: false, ..Default::default() });
    assert!(!printed.contains("me {"), "me itself is denied for anonymous callers: {printed}");
    let printed = filtered("{ me { secret } }", &Caller::with_scopes(["user"]));
    assert!(printed.contains("__typename") && !printed.contains("secret"), "{printed}");
}

#[test]
fn unauthorised_mutation_fields_are_removed_before_any_subgraph_sees_them() {
    let text = "mutation { signUp deleteEverything }";
    assert_eq!(denied(text, &Caller::with_scopes(["admin"])), vec![("deleteEverything".into(), Denial::MissingScopes)]);
    let printed = filtered(text, &Caller::with_scopes(["admin"]));
    assert!(printed.contains("signUp") && !printed.contains("deleteEverything"), "{printed}");
}

#[test]
fn an_operation_whose_every_root_field_is_denied_still_plans_without_subgraphs() {
    let printed = filtered("{ me { id } users { id } }", &Caller::anonymous());
    assert!(printed.contains("__typename") && !printed.contains("me {") && !printed.contains("users"), "{printed}");
}

#[test]
fn introspection_and_typename_are_never_guarded() {
    assert!(denied("{ __typename __schema { queryType { name } } }", &Caller::anonymous()).is_empty());
}

#[test]
fn the_operation_must_exist() {
    let doc = op("query A { public } query B { public }");
    assert_eq!(authorize(&index(), &doc, None, &Caller::anonymous()).unwrap_err(), GuardError::UnknownOperation);
    assert_eq!(authorize(&index(), &doc, Some("C"), &Caller::anonymous()).unwrap_err(), GuardError::UnknownOperation);
    assert!(authorize(&index(), &doc, Some("B"), &Caller::anonymous()).is_ok());
}

#[test]
fn exponential_fragment_fan_out_is_bounded() {
    // Each fragment spreads the next one twice: 2^20 selections if inlined naively.
    let mut text = String::from("query Q { me { ...F0 } }\n");
    for i in 0..20 {
        text.push_str(&format!("fragment F{i} on User {{ id ...F{n} ...F{n} }}\n", n = i + 1));
    }
    text.push_str("fragment F20 on User { id }\n");
    let doc = op(&text);
    let error = authorize(&index(), &doc, Some("Q"), &Caller::with_scopes(["user"])).unwrap_err();
    assert_eq!(error, GuardError::TooLarge);
}

#[test]
fn renamed_directives_from_link_are_honoured() {
    let schema_text = r#"
        schema @link(url: "https://specs.apollo.dev/authenticated/v0.1", as: "mustLogIn") { query: Query }
        directive @mustLogIn on FIELD_DEFINITION
        type Query { open: Int closed: Int @mustLogIn }
    "#;
    let doc: schema::Document = parse_schema::<String>(schema_text).unwrap().into_static();
    let index = GuardIndex::from_schema(&doc);
    let outcome = authorize(&index, &op("{ open closed }"), None, &Caller::anonymous()).unwrap();
    assert_eq!(
        outcome.denied,
        vec![DeniedField { path: vec!["closed".into()], denial: Denial::Unauthenticated, nulls_root_field: false }]
    );
}

#[test]
fn our_own_supergraph_guards_what_the_contract_says() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/supergraph.graphql")).unwrap();
    let doc: schema::Document = parse_schema::<String>(&text).unwrap().into_static();
    let index = GuardIndex::from_schema(&doc);
    let anonymous = Caller::anonymous();
    let user = Caller::with_scopes(["guest", "user"]);
    let check = |text: &str, caller: &Caller| {
        authorize(&index, &op(text), None, caller)
            .unwrap()
            .denied
            .into_iter()
            .map(|d| d.path.join("."))
            .collect::<Vec<_>>()
    };
    assert_eq!(check("{ me { id } }", &anonymous), vec!["me"]);
    assert!(check("{ me { id } }", &user).is_empty());
    assert_eq!(check("{ users { totalCount } }", &user), vec!["users"]);
    assert!(check("{ users { totalCount } }", &Caller::with_scopes(["guest", "user", "admin"])).is_empty());
    assert_eq!(check("mutation { logoutAll }", &anonymous), vec!["logoutAll"]);
    assert_eq!(check("mutation { setUserActive(userId: 1, active: false) { id } }", &user), vec!["setUserActive"]);
}

#[test]
fn a_denial_knows_whether_its_null_reaches_the_root_field() {
    let anonymous = Caller::anonymous();
    let reaches = |text: &str| -> Vec<(String, bool)> {
        let outcome = authorize(&index(), &op(text), None, &anonymous).unwrap();
        outcome.denied.into_iter().map(|d| (d.path.join("."), d.nulls_root_field)).collect()
    };
    // Non-null all the way up: login's answer would be null.
    assert_eq!(
        reaches("mutation { login { account { sessions { id } } } }"),
        [("login.account.sessions".into(), true)]
    );
    assert_eq!(
        reaches("mutation { login { accounts { sessions { id } } } }"),
        [("login.accounts.sessions".into(), true)]
    );
    // A nullable field, item or list on the way stops it.
    assert_eq!(reaches("mutation { login { account { note } } }"), [("login.account.note".into(), false)]);
    assert_eq!(reaches("mutation { login { loose { sessions { id } } } }"), [("login.loose.sessions".into(), false)]);
    // The root field nulls itself when nullable; that is still its null.
    assert_eq!(
        reaches("mutation { loginMaybe { account { sessions { id } } } }"),
        [("loginMaybe.account.sessions".into(), true)]
    );
    // A denied root field is not run at all: nothing to null.
    assert_eq!(reaches("mutation { deleteEverything }"), [("deleteEverything".into(), false)]);
}

#[test]
fn requirements_read_as_documentation() {
    let index = index();
    assert_eq!(index.describe_field("Query", "me").as_deref(), Some("Requires a signed-in caller."));
    assert_eq!(
        index.describe_field("Query", "users").as_deref(),
        Some("Requires the scopes `a` and `b`, or the scope `c`.")
    );
    // A guard on the returned type counts too.
    assert_eq!(index.describe_field("Query", "report").as_deref(), Some("Requires the scope `admin`."));
    assert_eq!(index.describe_field("User", "secret").as_deref(), Some("Requires the scope `vault`."));
    assert_eq!(index.describe_field("Query", "public"), None);
}
