//! The SDL the composition script reads: federation v2 with the access-control directives.

#[test]
fn the_sdl_marks_me_user_and_update_profile_authenticated_and_users_admin_only() {
    let sdl = gatehouse_users::schema_sdl();
    println!("{sdl}");
    let line = |field: &str| {
        sdl.lines().find(|l| l.trim_start().starts_with(field)).unwrap_or_else(|| panic!("{field} missing")).to_owned()
    };
    assert!(line("me:").ends_with("@authenticated"), "{}", line("me:"));
    assert!(line("user(").ends_with("@authenticated"), "{}", line("user("));
    assert!(line("updateProfile(").ends_with("@authenticated"), "{}", line("updateProfile("));
    assert!(line("): UserConnection!").ends_with("@requiresScopes(scopes: [[\"admin\"]])"));
    assert!(sdl.contains("\"@requiresScopes\", \"@authenticated\"]"), "@authenticated is not imported");
    assert!(
        !sdl.contains("directive @authenticated"),
        "a local @authenticated definition would shadow the federation one"
    );
    assert!(sdl.contains("type User @key(fields: \"id\")"));
}
