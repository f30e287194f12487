-- The reconciler's running totals, so a pass reads only the transfers since the last one instead of the
-- whole ledger. Every transfer with seq <= through_seq is folded into ledger_checkpoints.derived.
-- Transfers are immutable (trigger transfers_immutable), so a folded sum never goes stale; a periodic full
-- pass rebuilds both tables from scratch anyway, and any mismatch an incremental pass finds is confirmed
-- by a full pass before it is reported.
CREATE TABLE ledger_checkpoint_state (
    id          BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    through_seq BIGINT NOT NULL CHECK (through_seq >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE ledger_checkpoints (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    derived    BIGINT NOT NULL
);
