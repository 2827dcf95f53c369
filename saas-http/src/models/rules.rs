//! What the server accepts in each kind of body field, as JSON Schema for
//! the OpenAPI document (`#[schema(schema_with = rules::...)]`).
//!
//! Each schema is written from the limits and value lists of `saas-core`
//! that the checks themselves use, and says exactly what they accept, no
//! more and no less: a client generator or a gateway validating against
//! the document then agrees with the server, and `.ci/schemathesis.sh`
//! holds the server to it. Patterns are ECMA-262 as JSON Schema reads
//! them, spelled for what `saas_core::text` does: surrounding whitespace
//! (Rust's `char::is_whitespace`) is trimmed before lengths are counted,
//! and control characters (`char::is_control`) are refused.

use saas_core::plans::PlanCatalog;
use saas_core::projects::{
    MAX_DESCRIPTION_CHARS, MAX_SEARCH_CHARS, MAX_TITLE_CHARS, Priority, ProjectStatus,
    TaskOrderField, TaskStatus,
};
use saas_core::store::PageRequest;
use saas_core::tenancy::{Hostname, Slug, TenantName};
use saas_core::users::{MAX_DEPARTMENT_CHARS, MAX_NAME_CHARS, Password, Role, Username};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};

/// What `char::is_whitespace` matches (Unicode White_Space), as the
/// inside of a character class.
const WHITESPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` matches (Unicode Cc).
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// A character that is neither whitespace nor a control character.
const SOLID: &str =
    r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// Control characters a block of text may hold: tab, newline, return.
const BLOCK_CONTROL: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";
/// One hostname label: letters, digits and inner hyphens, 1 to 63.
const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// The characters of an email address's local part between dots.
const LOCAL: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";

fn string(nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new().schema_type(kind)
}

/// A one-line value of at most `max` characters once trimmed, without
/// control characters; blank allowed unless `required`.
fn line(max: usize, required: bool, nullable: bool) -> Object {
    let inner = max.saturating_sub(2);
    let core = format!("{SOLID}(?:[^{CONTROL}]{{0,{inner}}}{SOLID})?");
    let core = if required {
        core
    } else {
        format!("(?:{core})?")
    };
    string(nullable)
        .pattern(Some(format!("^[{WHITESPACE}]*{core}[{WHITESPACE}]*$")))
        .build()
}

/// Multi-line text of at most `max` characters (not trimmed), whose only
/// control characters are tabs and line breaks.
fn block(max: usize, nullable: bool) -> Object {
    string(nullable)
        .max_length(Some(max))
        .pattern(Some(format!("^[^{BLOCK_CONTROL}]*$")))
        .build()
}

fn one_of<'a>(values: impl IntoIterator<Item = &'a str>, nullable: bool) -> Object {
    let mut values: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    string(nullable).enum_values(Some(values)).build()
}

/// A project's name or a task's title.
pub(crate) fn title() -> Object {
    line(MAX_TITLE_CHARS, true, false)
}

/// A new name or title in a patch (`null` leaves it as it is).
pub(crate) fn title_patch() -> Object {
    line(MAX_TITLE_CHARS, true, true)
}

/// A project's or a task's description.
pub(crate) fn description() -> Object {
    block(MAX_DESCRIPTION_CHARS, false)
}

/// A new description in a patch.
pub(crate) fn description_patch() -> Object {
    block(MAX_DESCRIPTION_CHARS, true)
}

/// A tenant's display name.
pub(crate) fn company_name() -> Object {
    line(TenantName::MAX_CHARS, true, false)
}

/// A first or last name.
pub(crate) fn person_name() -> Object {
    line(MAX_NAME_CHARS, false, false)
}

/// A new first or last name in a patch.
pub(crate) fn person_name_patch() -> Object {
    line(MAX_NAME_CHARS, false, true)
}

/// A department.
pub(crate) fn department() -> Object {
    line(MAX_DEPARTMENT_CHARS, false, false)
}

/// A new department in a patch.
pub(crate) fn department_patch() -> Object {
    line(MAX_DEPARTMENT_CHARS, false, true)
}

/// A new username.
pub(crate) fn username() -> Object {
    string(false)
        .pattern(Some(format!(
            "^[A-Za-z0-9@.+_-]{{1,{}}}$",
            Username::MAX_LEN
        )))
        .build()
}

fn hostname_pattern() -> String {
    format!("{LABEL}(?:\\.{LABEL})*")
}

/// A hostname (letters are taken in lowercase).
pub(crate) fn hostname() -> Object {
    string(false)
        .max_length(Some(Hostname::MAX_LEN))
        .pattern(Some(format!("^{}$", hostname_pattern())))
        .build()
}

fn email_object(nullable: bool) -> Object {
    string(nullable)
        .max_length(Some(254))
        .pattern(Some(format!(
            "^(?=[^@]{{1,64}}@){LOCAL}+(?:\\.{LOCAL}+)*@{}$",
            hostname_pattern()
        )))
        .build()
}

/// An email address: ASCII, a local part of 1 to 64 characters, a hostname.
pub(crate) fn email() -> Object {
    email_object(false)
}

/// A new email address in a patch.
pub(crate) fn email_patch() -> Object {
    email_object(true)
}

/// A new password: 8 to 128 characters, not all digits.
pub(crate) fn password() -> Object {
    string(false)
        .pattern(Some(format!(
            "^(?![0-9]*$)[\\s\\S]{{{},{}}}$",
            Password::MIN_CHARS,
            Password::MAX_CHARS
        )))
        .build()
}

/// A tenant's slug (the seed's `schema_name`).
pub(crate) fn slug() -> Object {
    let reserved = Slug::RESERVED.join("|");
    string(false)
        .pattern(Some(format!(
            "^(?!pg_)(?!(?:{reserved})$)[a-z][a-z0-9_]{{1,{}}}$",
            Slug::MAX_LEN - 1
        )))
        .build()
}

/// A plan code of the built-in catalog.
pub(crate) fn plan() -> Object {
    let catalog = PlanCatalog::builtin();
    one_of(catalog.iter().map(|p| p.code.as_str()), false)
}

/// A plan code, or `null` for the default.
pub(crate) fn plan_or_default() -> Object {
    let catalog = PlanCatalog::builtin();
    one_of(catalog.iter().map(|p| p.code.as_str()), true)
}

/// A user's role, or `null` (the default on creation; no change in a patch).
pub(crate) fn role() -> Object {
    one_of(Role::ALL.iter().map(|r| r.as_str()), true)
}

/// A project's status, or `null` (the default; no change in a patch).
pub(crate) fn project_status() -> Object {
    one_of(ProjectStatus::ALL.iter().map(|s| s.as_str()), true)
}

/// A task's status, or `null`.
pub(crate) fn task_status() -> Object {
    one_of(TaskStatus::ALL.iter().map(|s| s.as_str()), true)
}

/// A task's priority, or `null`.
pub(crate) fn priority() -> Object {
    one_of(Priority::ALL.iter().map(|s| s.as_str()), true)
}

/// A query filter that is one of `values`, ignored when blank; the value
/// is trimmed first.
fn filter<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    let values: Vec<&str> = values.into_iter().collect();
    string(false)
        .pattern(Some(format!(
            "^[{WHITESPACE}]*(?:{})?[{WHITESPACE}]*$",
            values.join("|")
        )))
        .build()
}

/// `?status=` of the task list.
pub(crate) fn task_status_filter() -> Object {
    filter(TaskStatus::ALL.iter().map(|s| s.as_str()))
}

/// `?priority=` of the task list.
pub(crate) fn priority_filter() -> Object {
    filter(Priority::ALL.iter().map(|s| s.as_str()))
}

/// `?assigned_to=` of the task list: a user id or `me`.
pub(crate) fn assignee_filter() -> Object {
    filter(["me", "[+-]?[0-9]{1,18}"])
}

/// `?project=` of the task list: a project id.
pub(crate) fn project_filter() -> Object {
    filter(["[+-]?[0-9]{1,18}"])
}

/// `?ordering=` of the task list: a field, `-` in front for descending;
/// of a comma-separated list only the first counts.
pub(crate) fn task_ordering() -> Object {
    let fields: Vec<&str> = TaskOrderField::ALL.iter().map(|f| f.as_str()).collect();
    string(false)
        .pattern(Some(format!(
            "^[{WHITESPACE}]*(?:-?(?:{})[{WHITESPACE}]*(?:,[\\s\\S]*)?)?$",
            fields.join("|")
        )))
        .build()
}

/// `?search=`: ignored when blank, else at most 200 characters once
/// trimmed, without control characters.
pub(crate) fn search() -> Object {
    line(MAX_SEARCH_CHARS, false, false)
}

/// A date (`YYYY-MM-DD`, and the other spellings Django reads), or `null`.
pub(crate) fn date() -> Object {
    string(true)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .min_length(Some(1))
        .build()
}

/// A date and time (ISO 8601, and the other spellings Django reads), or `null`.
pub(crate) fn datetime() -> Object {
    string(true)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .min_length(Some(1))
        .build()
}

/// `?page=`: 1 to [`PageRequest::MAX_PAGE`].
pub(crate) fn page() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(PageRequest::MAX_PAGE))
        .build()
}

/// `?page_size=`: 1 to [`PageRequest::MAX_SIZE`].
pub(crate) fn page_size() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(PageRequest::MAX_SIZE))
        .build()
}

#[cfg(test)]
mod tests {
    use saas_core::text;

    use super::*;

    fn pattern(schema: Object) -> regex::Regex {
        let p = schema.pattern.expect("a pattern");
        regex::Regex::new(&p).expect("the pattern compiles")
    }

    /// Values at the edges of what the checks accept: blanks, surrounding
    /// whitespace of every kind, control characters, lengths.
    fn samples(max: usize) -> Vec<String> {
        let x = |n: usize| "x".repeat(n);
        let mut v: Vec<String> = [
            "",
            "a",
            " a ",
            "   ",
            "\t",
            "\ta\n",
            "a\u{7}b",
            "a\nb",
            "a\tb",
            "\u{a0}x\u{a0}",
            "\u{85}",
            "\u{feff}",
            "a\u{2028}b",
            "\u{3000}",
            "\u{1c}a",
            "é😀",
            "a\u{9f}",
            "x\r\n",
        ]
        .map(str::to_owned)
        .to_vec();
        v.extend([
            x(max),
            x(max + 1),
            format!("  {}  ", x(max)),
            format!(" {} ", x(max + 1)),
        ]);
        v.extend([
            format!("\u{2003}{}\u{2003}", x(max - 1)),
            format!("a{}b", " ".repeat(max - 2)),
        ]);
        v
    }

    #[track_caller]
    fn agree(schema: Object, max: usize, check: impl Fn(&str) -> bool) {
        let re = pattern(schema);
        for s in samples(max) {
            assert_eq!(re.is_match(&s), check(&s), "{s:?}");
        }
    }

    #[test]
    fn lines_say_what_saas_core_text_accepts() {
        agree(title(), MAX_TITLE_CHARS, |s| {
            text::required_line("f", s, MAX_TITLE_CHARS).is_ok()
        });
        agree(company_name(), TenantName::MAX_CHARS, |s| {
            text::required_line("f", s, TenantName::MAX_CHARS).is_ok()
        });
        agree(person_name(), MAX_NAME_CHARS, |s| {
            text::optional_line("f", s, MAX_NAME_CHARS).is_ok()
        });
        agree(search(), MAX_SEARCH_CHARS, |s| {
            text::optional_line("f", s, MAX_SEARCH_CHARS).is_ok()
        });
    }

    #[test]
    fn blocks_say_what_saas_core_text_accepts() {
        let schema = description();
        let max = schema.max_length.expect("a maxLength");
        let re = pattern(schema);
        for s in samples(MAX_DESCRIPTION_CHARS) {
            let documented = re.is_match(&s) && s.chars().count() <= max;
            let accepted = text::block("f", &s, MAX_DESCRIPTION_CHARS).is_ok();
            assert_eq!(documented, accepted, "{s:?}");
        }
    }

    #[test]
    fn usernames_and_hostnames_say_what_saas_core_accepts() {
        let names = [
            "admin",
            "a.b+c-d_e@f",
            "",
            "ADMIN",
            "а",
            "a b",
            &"u".repeat(150),
            &"u".repeat(151),
        ];
        let re = pattern(username());
        for s in names {
            assert_eq!(re.is_match(s), Username::parse(s).is_ok(), "{s:?}");
        }
        let schema = hostname();
        let max = schema.max_length.expect("a maxLength");
        let re = pattern(schema);
        let long_label = "l".repeat(64);
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        for s in [
            "acme.localhost",
            "localhost",
            "ACME.test",
            "-a.test",
            "a-.test",
            "a..b",
            "a.",
            ".a",
            "a_b.test",
            "xn--80ak6aa92e.com",
            long_label.as_str(),
            long_name.as_str(),
            "",
        ] {
            let documented = re.is_match(s) && s.len() <= max;
            assert_eq!(documented, Hostname::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn task_filters_say_what_the_task_list_reads() {
        let ordering = pattern(task_ordering());
        for (s, ok) in [
            ("", true),
            ("-due_date", true),
            (" title ", true),
            ("id,-title", true),
            ("due_date ,x", true),
            ("-", false),
            ("name", false),
            (",id", false),
        ] {
            assert_eq!(ordering.is_match(s), ok, "{s:?}");
        }
        let assignee = pattern(assignee_filter());
        for (s, ok) in [
            ("me", true),
            (" 12 ", true),
            ("+3", true),
            ("", true),
            ("you", false),
            ("1.5", false),
        ] {
            assert_eq!(assignee.is_match(s), ok, "{s:?}");
        }
        let status = pattern(task_status_filter());
        for s in ["todo", " done ", "", "DONE", "paused"] {
            let accepted = s.trim().is_empty() || s.trim().parse::<TaskStatus>().is_ok();
            assert_eq!(status.is_match(s), accepted, "{s:?}");
        }
    }
}
