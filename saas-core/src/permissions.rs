//! The one permission matrix: what each role may do.
//!
//! Object rules ("their projects") are expressed by [`Relation`]: how the
//! acting user relates to the project concerned. Every check in the service
//! layer goes through [`allowed`], so the whole policy reads in one screen.

use crate::error::{Error, Result};
use crate::users::Role;

/// Something a user may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// See every project of the tenant, not only their own.
    SeeAllProjects,
    /// List the tenant's users.
    ListUsers,
    /// Register a user with the given role.
    RegisterUser(Role),
    /// Change another user's role, details or active flag.
    ManageUsers,
    /// Create a project.
    CreateProject,
    /// Change a project's fields.
    UpdateProject,
    /// Delete a project.
    DeleteProject,
    /// Add or remove project members.
    ManageMembers,
    /// Create a task in a project.
    CreateTask,
    /// Change a task (including marking it complete).
    UpdateTask,
    /// Delete a task.
    DeleteTask,
    /// Generate a project report.
    GenerateReport,
    /// One of a host application's own actions.
    Host(HostAction),
}

/// A host application's own action, for the same matrix to judge: which
/// roles may perform it, and whether they must be involved with its
/// object (admins always may).
///
/// ```
/// use saas_core::permissions::{Action, HostAction, Relation, allowed};
/// use saas_core::users::Role;
///
/// const EDIT_NOTE: HostAction = HostAction::new("edit_note", Role::Member).involved();
/// assert!(allowed(Role::Member, Action::Host(EDIT_NOTE), Relation::Owner));
/// assert!(!allowed(Role::Member, Action::Host(EDIT_NOTE), Relation::None));
/// assert!(!allowed(Role::Viewer, Action::Host(EDIT_NOTE), Relation::Owner));
/// assert!(allowed(Role::Admin, Action::Host(EDIT_NOTE), Relation::None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAction {
    /// Its name, for messages.
    pub name: &'static str,
    /// The least powerful role that may perform it.
    pub least: Role,
    /// Whether non-admins must be involved with the object (member or owner).
    pub involved: bool,
}

impl HostAction {
    /// An action roles from `least` up may perform on anything.
    pub const fn new(name: &'static str, least: Role) -> Self {
        HostAction {
            name,
            least,
            involved: false,
        }
    }

    /// The same action, for non-admins only on objects they are involved with.
    pub const fn involved(mut self) -> Self {
        self.involved = true;
        self
    }
}

/// How the acting user relates to the object of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// No object, or an object the user has no tie to.
    None,
    /// A member of the project (or the task's assignee).
    Member,
    /// The project's owner, or the task's creator.
    Owner,
}

/// Whether `role`, related to the object as `rel`, may perform `action`.
pub fn allowed(role: Role, action: Action, rel: Relation) -> bool {
    use Action::*;
    use Role::*;
    let involved = rel != Relation::None;
    match (role, action) {
        (Admin, _) => true,
        // Roles are ordered most powerful first.
        (_, Host(a)) => role <= a.least && (!a.involved || involved),
        (_, ListUsers) => true,
        (Manager, RegisterUser(target)) => matches!(target, Member | Viewer),
        (Manager, CreateProject) => true,
        (
            Manager,
            UpdateProject | ManageMembers | CreateTask | UpdateTask | DeleteTask | GenerateReport,
        ) => involved,
        (Manager, DeleteProject) => rel == Relation::Owner,
        (Member, CreateTask | UpdateTask) => involved,
        (Member, DeleteTask) => rel == Relation::Owner,
        _ => false,
    }
}

/// `Ok` if allowed, else [`Error::Forbidden`] with a reason a client can show.
pub fn require(role: Role, action: Action, rel: Relation) -> Result<()> {
    if allowed(role, action, rel) {
        return Ok(());
    }
    let reason = match action {
        Action::SeeAllProjects => "only admins see every project",
        Action::ListUsers => "you may not list users",
        Action::RegisterUser(_) => "your role may not register users with this role",
        Action::ManageUsers => "only admins manage users",
        Action::CreateProject => "only admins and managers create projects",
        Action::UpdateProject => "you may not change this project",
        Action::DeleteProject => "only admins and the project's owner may delete it",
        Action::ManageMembers => "you may not manage this project's members",
        Action::CreateTask => "you may not create tasks in this project",
        Action::UpdateTask => "you may not change this task",
        Action::DeleteTask => "you may not delete this task",
        Action::GenerateReport => "you may not generate reports for this project",
        Action::Host(_) => "your role may not do this",
    };
    Err(Error::Forbidden { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        use Action::*;
        use Relation as R;
        for a in [
            CreateProject,
            DeleteProject,
            ManageUsers,
            RegisterUser(Role::Admin),
            SeeAllProjects,
        ] {
            assert!(allowed(Role::Admin, a, R::None));
        }
        assert!(allowed(Role::Manager, RegisterUser(Role::Member), R::None));
        assert!(allowed(Role::Manager, RegisterUser(Role::Viewer), R::None));
        assert!(!allowed(
            Role::Manager,
            RegisterUser(Role::Manager),
            R::None
        ));
        assert!(!allowed(Role::Manager, RegisterUser(Role::Admin), R::None));
        assert!(!allowed(Role::Manager, UpdateProject, R::None));
        assert!(allowed(Role::Manager, UpdateProject, R::Member));
        assert!(!allowed(Role::Manager, DeleteProject, R::Member));
        assert!(allowed(Role::Manager, DeleteProject, R::Owner));
        assert!(!allowed(Role::Member, CreateProject, R::None));
        assert!(allowed(Role::Member, UpdateTask, R::Member));
        assert!(!allowed(Role::Member, DeleteTask, R::Member));
        assert!(allowed(Role::Member, DeleteTask, R::Owner));
        assert!(!allowed(Role::Member, ManageMembers, R::Owner));
        for a in [
            CreateTask,
            UpdateTask,
            DeleteTask,
            CreateProject,
            RegisterUser(Role::Viewer),
            GenerateReport,
        ] {
            assert!(!allowed(Role::Viewer, a, R::Owner));
        }
        assert!(allowed(Role::Viewer, ListUsers, R::None));
        assert!(require(Role::Viewer, CreateTask, R::Member).is_err());
        let publish = HostAction::new("publish", Role::Manager);
        assert!(allowed(Role::Manager, Host(publish), R::None));
        assert!(!allowed(Role::Member, Host(publish), R::Owner));
        assert!(require(Role::Viewer, Host(publish), R::Owner).is_err());
    }
}
