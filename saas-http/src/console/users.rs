//! A tenant's users as both consoles show them: the table (role select,
//! activate or deactivate) and the form it posts, read into a
//! [`UserPatch`] and the audit entry's detail.

use maud::{Markup, html};
use saas_core::commands::UserPatch;
use saas_core::users::{Role, User};

use super::Form;
use super::html::csrf;
use crate::sessions::ConsoleSession;

/// The users table; each row's forms post to `{action}/{user id}`.
pub(crate) fn users_table(cs: &ConsoleSession, action: &str, users: &[User]) -> Markup {
    html! {
        table #users {
            thead { tr { th { "Username" } th { "Email" } th { "Role" } th { "Active" } th {} } }
            tbody { @for u in users {
                tr id={ "user-" (u.username.as_str()) } {
                    td { (u.username.as_str()) @if u.is_owner { " (owner)" } }
                    td { (u.email.as_str()) }
                    td {
                        form.inline method="post" action={ (action) "/" (u.id.0) } {
                            (csrf(cs))
                            select name="role" { @for r in Role::ALL { option value=(r.as_str()) selected[r == u.role] { (r.as_str()) } } }
                            button type="submit" { "Set role" }
                        }
                    }
                    td.active { (if u.is_active { "yes" } else { "no" }) }
                    td {
                        form.inline method="post" action={ (action) "/" (u.id.0) } {
                            (csrf(cs))
                            input type="hidden" name="active" value=(if u.is_active { "0" } else { "1" });
                            button type="submit" id={ (if u.is_active { "deactivate-" } else { "activate-" }) (u.username.as_str()) } {
                                (if u.is_active { "Deactivate" } else { "Activate" })
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// What a users table's form asks: a new role (`role`) or activation
/// (`active`: `1` or `0`), as a patch and the audit entry's detail.
pub(crate) fn user_patch(f: &Form) -> saas_core::Result<(UserPatch, String)> {
    let mut patch = UserPatch::default();
    let mut detail = String::new();
    if !f.get("role").is_empty() {
        let role = f.get("role").parse::<Role>()?;
        patch.role = Some(role);
        detail = format!("role {}", role.as_str());
    }
    match f.get("active") {
        "0" => {
            patch.is_active = Some(false);
            detail = "deactivated".to_owned();
        }
        "1" => {
            patch.is_active = Some(true);
            detail = "activated".to_owned();
        }
        _ => {}
    }
    Ok((patch, detail))
}
