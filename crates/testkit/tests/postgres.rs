//! The throwaway PostgreSQL server and per-test databases.

use casino_testkit::postgres::{TestDatabase, TestPostgres};
use sqlx::Row as _;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

#[tokio::test]
async fn each_test_gets_its_own_migrated_database() {
    let a = TestDatabase::create(&MIGRATOR).await.unwrap();
    let b = TestDatabase::create(&MIGRATOR).await.unwrap();
    assert_ne!(a.name, b.name);

    // Both start from the migrated template, seed row included.
    for db in [&a, &b] {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM widgets ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(names, ["seeded"]);
    }

    // Writes in one are invisible in the other.
    sqlx::query("INSERT INTO widgets (name) VALUES ('only-in-a')")
        .execute(&a.pool)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM widgets")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn constraints_are_real_postgres_constraints() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let error = sqlx::query("INSERT INTO widgets (name) VALUES ('seeded')")
        .execute(&db.pool)
        .await
        .unwrap_err();
    let code = error.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "23505", "unique_violation");
}

#[tokio::test]
async fn a_dropped_database_is_removed_from_the_server() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let name = db.name.clone();
    drop(db);
    let server = TestPostgres::get().unwrap();
    let pool = sqlx::PgPool::connect(&server.url("postgres"))
        .await
        .unwrap();
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&pool)
        .await
        .unwrap();
    assert!(exists.is_none(), "{name} still exists");
}

#[tokio::test]
async fn the_server_is_a_real_postgresql_not_running_as_root() {
    let db = TestDatabase::empty().await.unwrap();
    let row = sqlx::query("SELECT version() AS v, current_setting('data_directory') AS d")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let version: String = row.get("v");
    assert!(version.starts_with("PostgreSQL"), "{version}");
    if std::env::var("DATABASE_URL").is_err() {
        let data_dir: String = row.get("d");
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data_dir).unwrap());
        assert_ne!(owner, 0, "the data directory belongs to the postgres user");
    }
}
