//! Subdomain takeover: a host under the base domain belongs to the tenant
//! whose slug is its label there, on registration, on adding a domain and
//! on resolution.

use saas_core::Saas;
use saas_core::commands::Registration;
use saas_core::error::{Entity, Error};
use saas_core::tenancy::{Hostname, Slug};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{SECRET, World, assert_invalid, registration, unique_slug};

const BASE: &str = "apps.conformance.test";

fn under(label: &str) -> String {
    format!("{label}.{BASE}")
}

async fn registered_with(saas: &Saas, slug: &str, domain: String) -> Result<(), Error> {
    let r = Registration {
        domain_url: domain,
        ..registration(slug, None)
    };
    saas.register(r).await.map(|_| ())
}

/// Registration and adding a domain refuse another tenant's subdomain (and
/// the base domain itself) and accept the tenant's own; a domain claimed
/// before these checks cannot shadow the subdomain of the tenant the label
/// names.
pub async fn subdomains_under_the_base_domain_cannot_be_taken_over(f: &dyn Fixture) {
    let saas = Saas::builder(f.store())
        .secret(SECRET)
        .base_domain(Hostname::parse(BASE).unwrap())
        .build()
        .unwrap();
    let squatter = World::register(&saas, None).await;
    let victim = unique_slug();

    // Registration: another slug's subdomain, or a host below it, or the
    // base domain, is an invalid domain_url, and nothing is created.
    for domain in [
        under(&victim),
        format!("www.{}", under(&victim)),
        BASE.to_owned(),
    ] {
        let slug = unique_slug();
        assert_invalid(registered_with(&saas, &slug, domain).await, "domain_url");
        let slug = Slug::parse(&slug).unwrap();
        assert_eq!(f.store().tenant_by_slug(&slug).await.unwrap(), None);
    }
    // Its own subdomain, and hosts below it, are fine.
    let own = unique_slug();
    registered_with(&saas, &own, under(&own)).await.unwrap();

    // Adding a domain: the same rule, for the tenant's slug.
    let op = saas.operator_unchecked();
    let id = squatter.tenant.id;
    let mine = squatter.tenant.slug.as_str();
    for host in [
        under(&victim),
        format!("www.{}", under(&victim)),
        BASE.to_owned(),
    ] {
        assert_invalid(op.add_domain(id, &host, false).await, "hostname");
    }
    assert_eq!(f.store().domains(id).await.unwrap().len(), 1);
    op.add_domain(id, &format!("www.{}", under(mine)), false)
        .await
        .unwrap();
    op.add_domain(id, &format!("{victim}.example.org"), false)
        .await
        .unwrap();

    // A claim from before the checks (written straight to the catalog)
    // routes the host only until a tenant of that slug exists.
    let later = unique_slug();
    let claimed = Hostname::parse(&under(&later)).unwrap();
    f.store().add_domain(id, &claimed, false).await.unwrap();
    assert_eq!(saas.resolve_host(claimed.as_str()).await.unwrap().id, id);
    let (named, _) = saas.register(registration(&later, None)).await.unwrap();
    assert_eq!(
        saas.resolve_host(claimed.as_str()).await.unwrap().id,
        named.id,
        "the squatter's domain shadows the subdomain of the tenant it names"
    );
    // Suspending that tenant does not hand the host back to the squatter.
    op.suspend(named.id).await.unwrap();
    assert_err!(
        saas.resolve_host(claimed.as_str()).await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
}
