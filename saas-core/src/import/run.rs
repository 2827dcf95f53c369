//! The import run: every company of a source into the service's store,
//! one tenant at a time, verified, resumable.

use serde::Serialize;

use super::{Counts, ImportProblem, ImportSource, SourceCompany, SourceDomain, convert_tenant};
use crate::error::{Error, Result, chain};
use crate::service::Saas;
use crate::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName, TenantStatus};

/// What an import did with one company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// Written now, and verified.
    Imported,
    /// Imported by an earlier run and verified again; nothing written.
    AlreadyImported,
    /// Not imported (its problems say why); nothing written.
    Skipped,
    /// django-tenants' public schema: the shared tables, no company's
    /// data, so nothing to import (every deployment has one; it does not
    /// make a run fail).
    Public,
    /// A tenant with this slug exists but does not hold what the source
    /// does (imported from other data, or registered here); nothing written.
    Mismatch,
    /// Reading or writing failed (the problems say why); the run went on.
    Failed,
}

/// One company's line of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantReport {
    /// The company's schema name (the tenant's slug).
    pub schema: String,
    /// What happened.
    pub outcome: ImportOutcome,
    /// Rows the source holds.
    pub source: Counts,
    /// Rows the tenant holds after the run (zero when not imported).
    pub stored: Counts,
    /// Checksum of the stored ids; equal to the expected one when verified.
    pub checksum: String,
    /// Rows the import reported (changed or left out).
    pub problems: u64,
}

/// The outcome of an import run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// One line per company, by company id.
    pub tenants: Vec<TenantReport>,
    /// Every row changed or left out, and what was done.
    pub problems: Vec<ImportProblem>,
}

impl ImportReport {
    /// Companies with `outcome`.
    pub fn count(&self, outcome: ImportOutcome) -> usize {
        self.tenants.iter().filter(|t| t.outcome == outcome).count()
    }

    /// Whether every company was imported and verified (now or before);
    /// the public schema is no company.
    pub fn all_verified(&self) -> bool {
        self.tenants.iter().all(|t| {
            matches!(
                t.outcome,
                ImportOutcome::Imported | ImportOutcome::AlreadyImported | ImportOutcome::Public
            )
        })
    }
}

/// Progress of an import, reported after each company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProgress {
    /// Companies handled so far.
    pub done: u64,
    /// Companies in all.
    pub total: u64,
    /// The company just handled.
    pub schema: String,
    /// What happened to it.
    pub outcome: ImportOutcome,
}

/// Callback receiving import progress.
pub type ImportProgressFn<'a> = &'a (dyn Fn(ImportProgress) + Send + Sync);

/// django-tenants' own tenant: the public schema holds the shared tables.
const PUBLIC_SCHEMA: &str = "public";

impl Saas {
    /// Imports every company of `source` as a tenant (see [`crate::import`]):
    /// ids, timestamps, owners, assignments, statuses and password hashes
    /// kept; each tenant written all or nothing and verified against the
    /// source (counts and a checksum of ids); other domains added; inactive
    /// companies suspended. A company whose tenant exists and verifies is
    /// skipped, so running again changes nothing. A failing company is
    /// reported and the run goes on; only failing to list the source's
    /// companies and domains ends it.
    pub async fn import(
        &self,
        source: &dyn ImportSource,
        progress: ImportProgressFn<'_>,
    ) -> Result<ImportReport> {
        let mut companies = source.companies().await?;
        companies.sort_by_key(|c| c.id);
        let mut domains = source.domains().await?;
        domains.sort_by_key(|d| d.id);
        let mut report = ImportReport::default();

        for d in &domains {
            if !companies.iter().any(|c| c.id == d.tenant_id) {
                report.problems.push(ImportProblem::new(
                    "",
                    "tenants_domain",
                    d.id,
                    format!(
                        "{:?} routes to company {}, which does not exist",
                        d.domain, d.tenant_id
                    ),
                    "left out",
                ));
            }
        }
        let total = companies.len() as u64;
        for (i, company) in companies.iter().enumerate() {
            let mine: Vec<&SourceDomain> = domains
                .iter()
                .filter(|d| d.tenant_id == company.id)
                .collect();
            let mut problems = Vec::new();
            let line = self
                .import_company(source, company, &mine, &mut problems)
                .await
                .unwrap_or_else(|e| {
                    problems.push(ImportProblem::new(
                        &company.schema_name,
                        "tenants_company",
                        company.id,
                        chain(&e),
                        "not imported (or not verified); the next run tries again",
                    ));
                    TenantReport {
                        schema: company.schema_name.clone(),
                        outcome: ImportOutcome::Failed,
                        source: Counts::default(),
                        stored: Counts::default(),
                        checksum: String::new(),
                        problems: 0,
                    }
                });
            let line = TenantReport {
                problems: problems.len() as u64,
                ..line
            };
            progress(ImportProgress {
                done: i as u64 + 1,
                total,
                schema: line.schema.clone(),
                outcome: line.outcome,
            });
            report.tenants.push(line);
            report.problems.append(&mut problems);
        }
        self.forget_hosts();
        Ok(report)
    }

    async fn import_company(
        &self,
        source: &dyn ImportSource,
        company: &SourceCompany,
        domains: &[&SourceDomain],
        problems: &mut Vec<ImportProblem>,
    ) -> Result<TenantReport> {
        let schema = company.schema_name.as_str();
        let mut line = TenantReport {
            schema: schema.to_owned(),
            outcome: ImportOutcome::Skipped,
            source: Counts::default(),
            stored: Counts::default(),
            checksum: String::new(),
            problems: 0,
        };
        let mut skip = |problem: String, action: &str| {
            problems.push(ImportProblem::new(
                schema,
                "tenants_company",
                company.id,
                problem,
                action,
            ));
        };
        if schema == PUBLIC_SCHEMA {
            skip(
                "the public schema holds django-tenants' shared tables, not a company's data"
                    .into(),
                "skipped",
            );
            line.outcome = ImportOutcome::Public;
            return Ok(line);
        }
        let slug = match Slug::parse(schema) {
            Ok(slug) => slug,
            Err(e) => {
                skip(
                    format!("schema name refused as a slug: {}", chain(&e)),
                    "skipped",
                );
                return Ok(line);
            }
        };
        let name = match TenantName::parse(&company.name) {
            Ok(name) => name,
            Err(e) => {
                skip(format!("name refused: {}", chain(&e)), "skipped");
                return Ok(line);
            }
        };
        let plan = match self.plans().get(&company.subscription_plan) {
            Ok(plan) => plan.code.clone(),
            Err(_) => {
                let default = self.plans().default_plan().code.clone();
                skip(
                    format!("unknown plan {:?}", company.subscription_plan),
                    &format!("imported on the default plan, {default:?}"),
                );
                default
            }
        };
        // Hosts we accept, primary first.
        let mut hosts: Vec<(Hostname, bool)> = Vec::new();
        for d in domains {
            match Hostname::parse(&d.domain) {
                Ok(h) => hosts.push((h, d.is_primary)),
                Err(e) => problems.push(ImportProblem::new(
                    schema,
                    "tenants_domain",
                    d.id,
                    format!("{:?} refused: {}", d.domain, chain(&e)),
                    "left out",
                )),
            }
        }
        hosts.sort_by_key(|(_, primary)| !primary);
        let Some((primary, _)) = hosts.first().cloned() else {
            problems.push(ImportProblem::new(
                schema,
                "tenants_company",
                company.id,
                "no domain routes to the company",
                "skipped: a tenant needs a primary domain",
            ));
            return Ok(line);
        };

        let rows = source.tenant(company).await?;
        line.source = Counts {
            users: rows.users.len() as u64,
            projects: rows.projects.len() as u64,
            members: rows.members.len() as u64,
            tasks: rows.tasks.len() as u64,
        };
        let (data, mut found) = convert_tenant(schema, &rows);
        let expected = data.inventory();

        let tenant = match self.store().tenant_by_slug(&slug).await? {
            Some(existing) => {
                line.outcome = ImportOutcome::AlreadyImported;
                existing
            }
            None => {
                problems.append(&mut found);
                let new = NewTenant {
                    id: TenantId::new(),
                    name,
                    slug,
                    plan,
                    domain: primary.clone(),
                    created_at: company.created_on,
                };
                line.outcome = ImportOutcome::Imported;
                self.store().import_tenant(&new, &data).await?
            }
        };
        let stored = self.store().open(&tenant).await?.inventory().await?;
        line.stored = stored.counts();
        line.checksum = stored.checksum();
        if stored != expected {
            problems.push(ImportProblem::new(
                schema,
                "tenants_company",
                company.id,
                format!(
                    "tenant {:?} holds other rows than the source (checksum {}, expected {})",
                    tenant.slug.as_str(),
                    line.checksum,
                    expected.checksum()
                ),
                "left as it is; nothing written",
            ));
            line.outcome = match line.outcome {
                ImportOutcome::AlreadyImported => ImportOutcome::Mismatch,
                _ => ImportOutcome::Failed,
            };
            return Ok(line);
        }
        self.import_domains(&tenant, company, &hosts, domains, problems)
            .await?;
        let status = if company.is_active {
            TenantStatus::Active
        } else {
            TenantStatus::Suspended
        };
        if tenant.status != status {
            self.store().set_status(tenant.id, status).await?;
        }
        Ok(line)
    }

    /// Routes the company's other hosts to `tenant` (idempotent); a host
    /// another tenant has is reported and left there.
    async fn import_domains(
        &self,
        tenant: &Tenant,
        company: &SourceCompany,
        hosts: &[(Hostname, bool)],
        domains: &[&SourceDomain],
        problems: &mut Vec<ImportProblem>,
    ) -> Result<()> {
        for (host, _) in hosts {
            match self.store().tenant_by_domain(host).await? {
                Some(t) if t.id == tenant.id => {}
                Some(other) => {
                    let id = domains
                        .iter()
                        .find(|d| d.domain.eq_ignore_ascii_case(host.as_str()))
                        .map_or(company.id, |d| d.id);
                    problems.push(ImportProblem::new(
                        &company.schema_name,
                        "tenants_domain",
                        id,
                        format!(
                            "{:?} already routes to tenant {:?}",
                            host.as_str(),
                            other.slug.as_str()
                        ),
                        "left with that tenant",
                    ));
                }
                None => match self.store().add_domain(tenant.id, host, false).await {
                    Ok(_) | Err(Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_verified_counts_only_imported_tenants() {
        let line = |outcome| TenantReport {
            schema: "acme".into(),
            outcome,
            source: Counts::default(),
            stored: Counts::default(),
            checksum: String::new(),
            problems: 0,
        };
        let mut r = ImportReport {
            tenants: vec![
                line(ImportOutcome::Public),
                line(ImportOutcome::Imported),
                line(ImportOutcome::AlreadyImported),
            ],
            problems: vec![],
        };
        assert!(r.all_verified());
        assert_eq!(r.count(ImportOutcome::Imported), 1);
        r.tenants.push(line(ImportOutcome::Skipped));
        assert!(!r.all_verified());
        r.tenants.pop();
        r.tenants.push(line(ImportOutcome::Mismatch));
        assert!(!r.all_verified());
    }
}
