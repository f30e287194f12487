-- Concierge's reconciler asks which players wagered in a time window
-- (GET /internal/v1/wagering/players); without this index that is a scan of every transfer.
CREATE INDEX transfers_wagering_window ON transfers (created_at, player_id)
    WHERE kind IN ('bet', 'rollback') AND player_id IS NOT NULL;
