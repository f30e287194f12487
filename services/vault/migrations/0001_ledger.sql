-- Vault: players, currencies, the double-entry ledger, game API idempotency, rounds, limits, abuse, outbox.
-- Money is BIGINT minor units; EUR equivalents NUMERIC. Player balances can never go negative (CHECK);
-- transfers are immutable (trigger); every uniqueness rule that protects money is a constraint.

CREATE TABLE currencies (
    code                   TEXT PRIMARY KEY CHECK (code ~ '^[A-Z]{3,5}$'),
    exponent               SMALLINT NOT NULL CHECK (exponent BETWEEN 0 AND 12),
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    min_deposit            BIGINT NOT NULL CHECK (min_deposit > 0),
    max_deposit            BIGINT NOT NULL CHECK (max_deposit >= min_deposit),
    min_withdrawal         BIGINT NOT NULL CHECK (min_withdrawal > 0),
    max_withdrawal         BIGINT NOT NULL CHECK (max_withdrawal >= min_withdrawal),
    daily_withdrawal_limit BIGINT NOT NULL CHECK (daily_withdrawal_limit > 0),
    review_threshold       BIGINT NOT NULL CHECK (review_threshold > 0)
);

INSERT INTO currencies (code, exponent, min_deposit, max_deposit, min_withdrawal, max_withdrawal, daily_withdrawal_limit, review_threshold) VALUES
    ('EUR', 2, 1000, 1000000, 2000, 500000, 1000000, 200000),
    ('USD', 2, 1000, 1000000, 2000, 500000, 1000000, 200000),
    ('GBP', 2, 1000, 1000000, 2000, 500000, 1000000, 200000),
    ('CAD', 2, 1000, 1000000, 2000, 500000, 1000000, 200000),
    ('JPY', 0, 1000, 1500000, 2000, 700000, 1500000, 300000),
    ('BTC', 8, 10000, 100000000, 20000, 50000000, 100000000, 20000000);

CREATE TABLE players (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('player', 'staff', 'admin')),
    currency      TEXT NOT NULL REFERENCES currencies (code),
    locked        BOOLEAN NOT NULL DEFAULT FALSE,
    lock_reason   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    player_id   UUID NOT NULL REFERENCES players (id),
    family_id   UUID NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE login_throttle (
    email        TEXT PRIMARY KEY,
    failures     INT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL
);

-- Game sessions: what a game provider presents with a bet (wins and rollbacks need none).
CREATE TABLE game_sessions (
    token_hash BYTEA PRIMARY KEY,
    player_id  UUID NOT NULL REFERENCES players (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

-- One account per (owner, currency). Owners: a player id, or a system owner (house, psp:<provider>,
-- bonus, jackpot). Only player balances are maintained here (guarded UPDATE, never negative); system
-- balances are derived from transfers, so no bet ever waits on a shared hot row.
CREATE TABLE accounts (
    id         BIGSERIAL PRIMARY KEY,
    owner      TEXT NOT NULL,
    player_id  UUID REFERENCES players (id),
    currency   TEXT NOT NULL REFERENCES currencies (code),
    is_system  BOOLEAN NOT NULL,
    balance    BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner, currency),
    CHECK (is_system OR balance >= 0),
    CHECK (is_system = (player_id IS NULL)),
    CHECK (NOT is_system OR balance = 0)
);
CREATE INDEX accounts_player ON accounts (player_id) WHERE player_id IS NOT NULL;

CREATE TABLE transfers (
    id                    UUID PRIMARY KEY,
    seq                   BIGSERIAL NOT NULL UNIQUE,
    kind                  TEXT NOT NULL CHECK (kind IN ('bet', 'win', 'rollback', 'deposit', 'withdrawal',
                              'withdrawal_reversal', 'bonus', 'jackpot_payout', 'adjustment')),
    debit_account         BIGINT NOT NULL REFERENCES accounts (id),
    credit_account        BIGINT NOT NULL REFERENCES accounts (id),
    amount                BIGINT NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL REFERENCES currencies (code),
    amount_eur            NUMERIC(24, 8) NOT NULL CHECK (amount_eur >= 0),
    idempotency_key       TEXT NOT NULL UNIQUE,
    player_id             UUID REFERENCES players (id),
    player_delta          BIGINT NOT NULL,
    balance_after         BIGINT,
    provider              TEXT,
    round_id              TEXT,
    game_id               TEXT,
    game_category         TEXT,
    reference_transfer_id UUID REFERENCES transfers (id),
    metadata              JSONB NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_player_seq ON transfers (player_id, seq DESC);
CREATE INDEX transfers_player_time ON transfers (player_id, created_at);
CREATE INDEX transfers_debit ON transfers (debit_account);
CREATE INDEX transfers_credit ON transfers (credit_account);
-- A bet is rolled back at most once.
CREATE UNIQUE INDEX transfers_one_rollback_per_bet ON transfers (reference_transfer_id) WHERE kind = 'rollback';

CREATE FUNCTION transfers_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transfers are immutable: post a compensating transfer instead';
END $$;
CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION transfers_are_immutable();

-- Rounds of a game provider.
CREATE TABLE rounds (
    provider   TEXT NOT NULL,
    round_id   TEXT NOT NULL,
    player_id  UUID NOT NULL REFERENCES players (id),
    game_id    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'settled')),
    opened_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at TIMESTAMPTZ,
    PRIMARY KEY (provider, round_id)
);
CREATE INDEX rounds_open ON rounds (opened_at) WHERE status = 'open';

-- Idempotency of the seamless-wallet API: one row per (provider, provider transaction id). The first
-- request's answer is stored and replayed; a rollback of an unknown bet stores a tombstone under the bet's
-- id, so the late bet hits this same key and is refused.
CREATE TABLE game_transactions (
    provider       TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    operation      TEXT NOT NULL CHECK (operation IN ('bet', 'win', 'rollback', 'tombstone')),
    request_hash   BYTEA NOT NULL,
    player_id      UUID,
    round_id       TEXT,
    transfer_id    UUID REFERENCES transfers (id),
    http_status    SMALLINT NOT NULL,
    response       JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, transaction_id)
);

-- Staff-set bet limits per (game or '*' for the default, currency), minor units.
CREATE TABLE bet_limits (
    game_id    TEXT NOT NULL,
    currency   TEXT NOT NULL REFERENCES currencies (code),
    min_bet    BIGINT NOT NULL CHECK (min_bet > 0),
    max_bet    BIGINT NOT NULL CHECK (max_bet >= min_bet),
    updated_by UUID,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, currency)
);

CREATE TABLE abuse_signals (
    id         BIGSERIAL PRIMARY KEY,
    player_id  UUID REFERENCES players (id),
    signal     TEXT NOT NULL CHECK (signal IN ('over_limit', 'rollback_ratio', 'velocity',
                   'insufficient_funds_hammering', 'idempotency_conflict', 'signature_failure')),
    details    JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX abuse_signals_player ON abuse_signals (player_id, created_at);
CREATE INDEX abuse_signals_time ON abuse_signals (created_at);

-- Idempotency of player/staff API calls that move money (Idempotency-Key header).
CREATE TABLE api_idempotency (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    http_status  SMALLINT NOT NULL,
    response     JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Transactional outbox: written in the request's transaction, published by the relay.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    headers      JSONB NOT NULL DEFAULT '[]',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
