//! Certificates and their SNIs, as Kong's certificates DAO and routes handle them
//! (`kong/db/dao/certificates.lua`, `kong/api/routes/certificates.lua`):
//!
//! - a certificate is addressed by id or by the name of one of its SNIs;
//! - writes accept a transient `snis` list of names; the SNI entities are created, and on PUT
//!   and PATCH with a list, names no longer listed are deleted (PUT without a list clears them);
//! - reads show the names as a sorted `snis` list;
//! - deleting a certificate deletes its SNIs first.
//!
//! Every other entity passes through these functions unchanged.

use crate::dao::{Dao, as_uuid, reference, row_id};
use crate::errors::AdminError;
use crate::table::Entity;
use serde_json::{Value, json};
use silverback_model::entities;
use silverback_model::schema::{FieldErrors, Map};
use silverback_store::Store;
use uuid::Uuid;

fn is_cert(e: Entity) -> bool {
    e.ep.entity == "certificates"
}

fn violation(msg: String) -> AdminError {
    let mut errors = FieldErrors::default();
    errors.field("snis", msg);
    AdminError::Schema(errors)
}

/// A certificate by the name of one of its SNIs; `SNI not found` when there is none.
pub async fn select_by_sni<S: Store>(
    dao: &Dao<'_, S>,
    name: &str,
) -> Result<Option<Map>, AdminError> {
    let (Some(snis), Some(certs)) = (entities::schema("snis"), entities::schema("certificates"))
    else {
        return Ok(None);
    };
    let Some(sni) = dao.st.store.get_by(snis, "name", name).await? else {
        return Err(AdminError::NotFoundMessage("SNI not found".into()));
    };
    match reference(&sni, "certificate") {
        Some(id) => Ok(dao.st.store.get(certs, id).await?),
        None => Ok(None),
    }
}

/// For `PUT /certificates/{sni name}`: the certificate's id (a new one when the SNI does not
/// exist yet) and the name, which joins the body's `snis`.
pub async fn put_target<S: Store>(
    dao: &Dao<'_, S>,
    name: &str,
) -> Result<(Uuid, Option<Map>), AdminError> {
    match select_by_sni(dao, name).await {
        Ok(Some(cert)) => Ok((row_id(&cert).unwrap_or_else(Uuid::new_v4), Some(cert))),
        Ok(None) | Err(AdminError::NotFoundMessage(_)) => Ok((Uuid::new_v4(), None)),
        Err(e) => Err(e),
    }
}

/// Adds `name` to the body's `snis` for `PUT /certificates/{name}` (Kong's `prepare_args`).
pub fn add_put_name(body: &mut Map, name: &str) {
    match body.get_mut("snis") {
        Some(Value::Array(list)) => {
            if !list.iter().any(|v| v.as_str() == Some(name)) {
                list.push(name.into());
            }
        }
        Some(Value::String(s)) if s != name => {
            let first = s.clone();
            body.insert("snis".into(), json!([first, name]));
        }
        Some(Value::String(_)) => {}
        _ => {
            body.insert("snis".into(), json!([name]));
        }
    }
}

/// Takes the validated `snis` list out of a certificate row (it is not stored). `None`: leave
/// the SNIs as they are. PUT without a list means an empty one.
pub fn take_names(e: Entity, map: &mut Map, put: bool) -> Result<Option<Vec<String>>, AdminError> {
    if !is_cert(e) {
        return Ok(None);
    }
    let names = match map.remove("snis") {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect::<Vec<_>>(),
        _ if put => Vec::new(),
        _ => return Ok(None),
    };
    let mut sorted = names.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        if pair[0] == pair[1] {
            return Err(violation(format!("{} is duplicated", pair[0])));
        }
    }
    Ok(Some(sorted))
}

/// Refuses names already used by another certificate.
pub async fn check_names_free<S: Store>(
    dao: &Dao<'_, S>,
    names: &[String],
    cert: Option<Uuid>,
) -> Result<(), AdminError> {
    let Some(snis) = entities::schema("snis") else {
        return Ok(());
    };
    for name in names {
        if let Some(row) = dao.st.store.get_by(snis, "name", name).await?
            && let Some(owner) = reference(&row, "certificate")
            && Some(owner) != cert
        {
            return Err(violation(format!(
                "{name} already associated with existing certificate '{owner}'"
            )));
        }
    }
    Ok(())
}

/// The SNI rows of a certificate.
async fn sni_rows<S: Store>(dao: &Dao<'_, S>, cert: Uuid) -> Result<Vec<Map>, AdminError> {
    match entities::schema("snis") {
        Some(snis) => dao.list_all_for(snis, "certificate", cert).await,
        None => Ok(Vec::new()),
    }
}

/// After a certificate write: brings its SNIs in line with `names` (when given) and adds the
/// `snis` list to the returned row.
pub async fn after_write<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    row: &mut Map,
    names: Option<Vec<String>>,
) -> Result<(), AdminError> {
    if !is_cert(e) {
        return Ok(());
    }
    let (Some(cert), Some(snis)) = (row_id(row), crate::table::by_entity("snis")) else {
        return Ok(());
    };
    if let Some(names) = names {
        let existing = sni_rows(dao, cert).await?;
        for old in &existing {
            let name = old.get("name").and_then(Value::as_str).unwrap_or_default();
            if !names.iter().any(|n| n == name)
                && let Some(id) = row_id(old)
            {
                dao.delete_row(snis, id).await?;
            }
        }
        for name in &names {
            let known = existing
                .iter()
                .any(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()));
            if !known {
                let mut sni = Map::new();
                sni.insert("name".into(), name.clone().into());
                sni.insert("certificate".into(), json!({ "id": cert.to_string() }));
                dao.insert_row(snis, sni).await?;
            }
        }
    }
    add_names(dao, e, row).await
}

/// Adds the sorted `snis` names to a certificate row being returned.
pub async fn add_names<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    row: &mut Map,
) -> Result<(), AdminError> {
    if !is_cert(e) {
        return Ok(());
    }
    let Some(cert) = row_id(row) else {
        return Ok(());
    };
    let mut names: Vec<String> = sni_rows(dao, cert)
        .await?
        .iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    names.sort();
    row.insert("snis".into(), json!(names));
    Ok(())
}

/// Deletes a certificate's SNIs before the certificate itself.
pub async fn before_delete<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    cert: Uuid,
) -> Result<(), AdminError> {
    if !is_cert(e) {
        return Ok(());
    }
    let Some(snis) = crate::table::by_entity("snis") else {
        return Ok(());
    };
    for row in sni_rows(dao, cert).await? {
        if let Some(id) = row_id(&row) {
            dao.delete_row(snis, id).await?;
        }
    }
    Ok(())
}

/// Whether a URL segment names a certificate by SNI rather than by id.
pub fn by_sni_name(e: Entity, key: &str) -> bool {
    is_cert(e) && as_uuid(key).is_none()
}
