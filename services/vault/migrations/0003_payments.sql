-- Deposits and withdrawals through payment providers (PSPs). Money moves only through ledger transfers:
-- a deposit credits the player from `psp:<provider>` once, a withdrawal holds the funds at once (player ->
-- `psp:<provider>`) and a failed or rejected payout is reversed by a `withdrawal_reversal` transfer.

CREATE TABLE payments (
    id                 UUID PRIMARY KEY,
    player_id          UUID NOT NULL REFERENCES players (id),
    direction          TEXT NOT NULL CHECK (direction IN ('deposit', 'withdrawal')),
    provider           TEXT NOT NULL,
    currency           TEXT NOT NULL REFERENCES currencies (code),
    amount             BIGINT NOT NULL CHECK (amount > 0),
    amount_eur         NUMERIC(24, 8) NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'review', 'succeeded', 'failed', 'expired',
                           'reversed', 'rejected')),
    provider_reference TEXT,
    redirect_url       TEXT,
    failure_reason     TEXT,
    flagged            BOOLEAN NOT NULL DEFAULT FALSE,
    flag_reason        TEXT,
    hold_transfer_id   UUID REFERENCES transfers (id),
    settle_transfer_id UUID REFERENCES transfers (id),
    idempotency_key    TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at        TIMESTAMPTZ,
    UNIQUE (player_id, idempotency_key)
);
CREATE INDEX payments_player ON payments (player_id, created_at DESC, id DESC);
CREATE INDEX payments_open ON payments (status, created_at) WHERE status IN ('pending', 'review');

-- Every status change, for audit and support.
CREATE TABLE payment_events (
    id         BIGSERIAL PRIMARY KEY,
    payment_id UUID NOT NULL REFERENCES payments (id),
    status     TEXT NOT NULL,
    details    JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

-- Webhook deliveries already handled (PSPs retry).
CREATE TABLE psp_webhooks (
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    payment_id  UUID,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
