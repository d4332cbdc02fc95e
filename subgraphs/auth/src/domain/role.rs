use std::fmt;
use std::str::FromStr;

/// A role. Each role implies the ones before it: `GUEST < USER < ADMIN < SYS_ADMIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Signed in, with no further rights (scope `guest`).
    Guest,
    /// An ordinary account (scopes `guest user`).
    User,
    /// Manages users and grants roles up to ADMIN (scopes `guest user admin`).
    Admin,
    /// Everything, including granting SYS_ADMIN (scopes `guest user admin sys_admin`).
    SysAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Guest, Role::User, Role::Admin, Role::SysAdmin];

    /// The name stored in the database and carried in events (`SYS_ADMIN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "GUEST",
            Role::User => "USER",
            Role::Admin => "ADMIN",
            Role::SysAdmin => "SYS_ADMIN",
        }
    }

    /// The scope in access tokens (`sys_admin`).
    pub fn scope(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::User => "user",
            Role::Admin => "admin",
            Role::SysAdmin => "sys_admin",
        }
    }

    /// This role and every role it implies, lowest first.
    pub fn implied(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| *r <= self).collect()
    }

    /// The space-separated `scope` claim for a holder of this role.
    pub fn scope_claim(self) -> String {
        self.implied().into_iter().map(Role::scope).collect::<Vec<_>>().join(" ")
    }

    /// The highest role a set of scopes proves (`None` when it proves none).
    pub fn highest_in(scopes: &[String]) -> Option<Role> {
        Role::ALL.into_iter().rev().find(|r| scopes.iter().any(|s| s == r.scope()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown role {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_implies_the_ones_before_it() {
        assert_eq!(Role::Admin.scope_claim(), "guest user admin");
        assert_eq!(Role::Guest.implied(), vec![Role::Guest]);
        assert_eq!(Role::highest_in(&["guest".into(), "user".into()]), Some(Role::User));
        assert_eq!("SYS_ADMIN".parse::<Role>(), Ok(Role::SysAdmin));
    }
}
