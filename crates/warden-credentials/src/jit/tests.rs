//! The manager against a real PostgreSQL cluster with SCRAM authentication.

use super::*;
use warden_testkit::PgCluster;

const ADMIN_PW: &str = "admin-pw-b7c1e0d2";

async fn cluster() -> PgCluster {
    let pg = PgCluster::start_scram().await.expect("scram cluster");
    pg.psql(&format!(
        "CREATE ROLE warden_admin LOGIN CREATEROLE PASSWORD '{ADMIN_PW}';
         CREATE ROLE app_readonly NOLOGIN;
         CREATE ROLE weak_admin LOGIN PASSWORD '{ADMIN_PW}';
         CREATE ROLE warden_handmade LOGIN;
         CREATE ROLE other_role LOGIN;"
    ))
    .await
    .unwrap();
    pg
}

fn settings(pg: &PgCluster, instance: &str) -> JitSettings {
    JitSettings {
        connection: "app".into(),
        host: "127.0.0.1".into(),
        port: pg.port(),
        database: "postgres".into(),
        admin_username: "warden_admin".into(),
        admin_password: Some(Secret::new(ADMIN_PW)),
        grant_roles: vec!["app_readonly".into()],
        grants: vec![],
        ttl: Duration::from_secs(600),
        max_ttl: Duration::from_secs(3600),
        prefix: "warden_".into(),
        connection_limit: 1,
        owned_objects: OwnedObjects::Reassign,
        reassign_to: "warden_admin".into(),
        pool_size: 2,
        sweep_interval: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(5),
        instance: instance.into(),
    }
}

fn info(id: &str) -> SessionInfo<'_> {
    SessionInfo {
        session_id: id,
        subject: "alice@example.com",
        max_session: None,
    }
}

async fn role_exists(pg: &PgCluster, role: &str) -> bool {
    pg.psql(&format!(
        "SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"
    ))
    .await
    .unwrap()
        == "1"
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_a_bounded_role_and_drops_it() {
    let pg = cluster().await;
    let m = JitManager::new(settings(&pg, "inst-a"));
    let lease = m
        .create(&info("0123456789abcdef-rest"), &[])
        .await
        .expect("create");
    assert_eq!(lease.role, "warden_0123456789ab");
    let row = pg
        .psql(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolconnlimit, \
             rolvaliduntil > now() AND rolvaliduntil < now() + interval '11 minutes', \
             pg_has_role('warden_0123456789ab', 'app_readonly', 'MEMBER'), \
             shobj_description(oid, 'pg_authid') \
             FROM pg_roles WHERE rolname = 'warden_0123456789ab'",
        )
        .await
        .unwrap();
    assert_eq!(
        row,
        "t|f|f|1|t|t|warden-jit v1 instance=inst-a connection=app \
         session=0123456789abcdef-rest subject=alice@example.com"
    );
    let stored = pg
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'warden_0123456789ab'")
        .await
        .unwrap();
    assert_eq!(stored, lease.key.as_ref().unwrap().verifier());
    assert_eq!(m.live_roles(), vec!["warden_0123456789ab".to_owned()]);

    drop(lease);
    for _ in 0..50 {
        if !role_exists(&pg, "warden_0123456789ab").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!role_exists(&pg, "warden_0123456789ab").await);
    assert!(m.live_roles().is_empty());
    // Idempotent: dropping a role that is gone succeeds.
    m.drop_role("warden_0123456789ab").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn owned_objects_are_reassigned_or_dropped() {
    let pg = cluster().await;
    pg.psql("GRANT CREATE ON SCHEMA public TO app_readonly")
        .await
        .unwrap();
    for (mode, survives, id) in [
        (OwnedObjects::Reassign, true, "aaaaaaaaaaaa"),
        (OwnedObjects::Drop, false, "bbbbbbbbbbbb"),
    ] {
        let mut s = settings(&pg, "inst-o");
        s.owned_objects = mode;
        let m = JitManager::new(s);
        let lease = m.create(&info(id), &[]).await.unwrap();
        pg.psql(&format!(
            "SET ROLE warden_{id}; CREATE TABLE made_by_session (x int)"
        ))
        .await
        .unwrap();
        m.drop_role(&lease.role).await.expect("drop owning role");
        assert!(!role_exists(&pg, &format!("warden_{id}")).await);
        let owner = pg
            .psql("SELECT coalesce((SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_session'), 'gone')")
            .await
            .unwrap();
        assert_eq!(
            owner,
            if survives { "warden_admin" } else { "gone" },
            "{mode:?}"
        );
        pg.psql("DROP TABLE IF EXISTS made_by_session")
            .await
            .unwrap();
        drop(lease);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_drops_only_expired_and_own_orphans() {
    let pg = cluster().await;
    // An orphan of this instance (its gateway died): not live here.
    let m_old = JitManager::new(settings(&pg, "inst-s"));
    let orphan = m_old.create(&info("111111111111"), &[]).await.unwrap();
    std::mem::forget(orphan); // as if the process had been killed
                              // Another instance's live role, and another instance's expired role.
    let m_other = JitManager::new(settings(&pg, "inst-other"));
    let live_elsewhere = m_other.create(&info("222222222222"), &[]).await.unwrap();
    let expired = m_other.create(&info("333333333333"), &[]).await.unwrap();
    pg.psql("ALTER ROLE warden_333333333333 VALID UNTIL '2000-01-01'")
        .await
        .unwrap();
    // A live role of the same instance but another connection to this target.
    let mut other_conn = settings(&pg, "inst-s");
    other_conn.connection = "app2".into();
    let m_app2 = JitManager::new(other_conn);
    let sibling = m_app2.create(&info("555555555555"), &[]).await.unwrap();
    // A live role of the sweeping instance itself.
    let m = JitManager::new(settings(&pg, "inst-s"));
    let mine = m.create(&info("444444444444"), &[]).await.unwrap();

    let mut dropped = m.sweep().await.unwrap();
    dropped.sort();
    assert_eq!(dropped, vec!["warden_111111111111", "warden_333333333333"]);
    for (role, exists) in [
        ("warden_111111111111", false),
        ("warden_333333333333", false),
        ("warden_222222222222", true),
        ("warden_444444444444", true),
        ("warden_555555555555", true),
        ("warden_handmade", true),
        ("other_role", true),
    ] {
        assert_eq!(role_exists(&pg, role).await, exists, "{role}");
    }
    drop((live_elsewhere, expired, mine, sibling));
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfiguration_is_named() {
    let pg = cluster().await;
    let mut s = settings(&pg, "inst-m");
    s.admin_username = "weak_admin".into();
    let e = JitManager::new(s)
        .create(&info("555555555555"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42501"), "{e}");
    assert!(
        e.message.contains("permission denied to create role"),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap().contains("CREATEROLE"), "{e:?}");

    let mut s = settings(&pg, "inst-m");
    s.grant_roles = vec!["no_such_role".into()];
    let e = JitManager::new(s)
        .create(&info("666666666666"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42704"), "{e}");
    assert!(e.message.contains("\"no_such_role\" does not exist"), "{e}");
    assert!(
        !role_exists(&pg, "warden_666666666666").await,
        "all or nothing"
    );

    let mut s = settings(&pg, "inst-m");
    s.admin_password = Some(Secret::new("wrong-password"));
    let e = JitManager::new(s)
        .create(&info("777777777777"), &[])
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("cannot log in to the target as the admin role"),
        "{e}"
    );
    assert!(!format!("{e:?}").contains("wrong-password"));
    assert!(!format!("{e:?}").contains(ADMIN_PW));
}

#[test]
fn role_names_are_prefix_and_twelve_hex_digits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let s = JitSettings {
        connection: "c".into(),
        host: "127.0.0.1".into(),
        port: 1,
        database: "d".into(),
        admin_username: "a".into(),
        admin_password: None,
        grant_roles: vec![],
        grants: vec![],
        ttl: Duration::from_secs(60),
        max_ttl: Duration::from_secs(60),
        prefix: "wjit_".into(),
        connection_limit: 1,
        owned_objects: OwnedObjects::Drop,
        reassign_to: "a".into(),
        pool_size: 1,
        sweep_interval: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(1),
        instance: "i".into(),
    };
    let m = JitManager::new(s);
    assert_eq!(
        m.role_name("9F3A2C1B-7D4E-4000-8000-000000000000"),
        "wjit_9f3a2c1b7d4e"
    );
    assert_eq!(m.role_name("x\"; drop role postgres"), "wjit_dee");
}

#[tokio::test(flavor = "multi_thread")]
async fn validity_is_renewed_but_never_past_the_hard_end() {
    let pg = cluster().await;
    let mut s = settings(&pg, "inst-r");
    s.ttl = Duration::from_secs(3);
    s.max_ttl = Duration::from_secs(60);
    let m = JitManager::new(s);
    let lease = m
        .create(
            &SessionInfo {
                session_id: "888888888888",
                subject: "renewed",
                max_session: Some(Duration::from_secs(5)),
            },
            &[],
        )
        .await
        .unwrap();
    let until = || async {
        pg.psql(
            "SELECT extract(epoch FROM rolvaliduntil)::float8 FROM pg_roles \
             WHERE rolname = 'warden_888888888888'",
        )
        .await
        .unwrap()
        .parse::<f64>()
        .unwrap()
    };
    let hard_end = lease
        .hard_end
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let first = until().await;
    assert!(
        first < hard_end - 1.0,
        "starts at now + ttl, before the hard end"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = until().await;
    assert!(later > first + 1.0, "renewed: {first} -> {later}");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let last = until().await;
    assert!(
        (last - hard_end).abs() < 0.01,
        "capped at the hard end: {last} vs {hard_end}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_retries_until_the_role_can_be_dropped() {
    let pg = cluster().await;
    pg.psql("CREATE DATABASE other").await.unwrap();
    let m = JitManager::new(settings(&pg, "inst-t"));
    let mut lease = m.create(&info("999999999999"), &[]).await.unwrap();
    let role = std::mem::take(&mut lease.role);
    std::mem::forget(lease);
    // An object in another database: REASSIGN/DROP OWNED here cannot reach it, so DROP
    // ROLE fails until someone removes it.
    let pw = pg.superuser_password().to_owned();
    pg.psql_as(
        "postgres",
        Some(&pw),
        "other",
        &format!("CREATE TABLE elsewhere (x int); ALTER TABLE elsewhere OWNER TO {role}"),
    )
    .await
    .unwrap();
    let m2 = m.clone();
    let r2 = role.clone();
    let teardown = tokio::spawn(async move { m2.teardown(&r2).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(role_exists(&pg, &role).await, "first attempts fail");
    assert!(m
        .drop_role(&role)
        .await
        .unwrap_err()
        .message
        .contains("depend"));
    pg.psql_as("postgres", Some(&pw), "other", "DROP TABLE elsewhere")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), teardown)
        .await
        .expect("a retry succeeds")
        .unwrap();
    assert!(!role_exists(&pg, &role).await);
}
