-- Concierge: rewards from the bet stream.
--
-- Rules (levels and VIP-point rates) are versioned and immutable: a change is a new version, and every
-- award names the version that produced it, so the verifier can recompute it later.

CREATE FUNCTION concierge_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rule versions are immutable', TG_TABLE_NAME;
END;
$$;

CREATE TABLE rule_sets (
    version      integer PRIMARY KEY CHECK (version > 0),
    -- VIP points per EUR for a game category that has no rate of its own.
    default_rate numeric NOT NULL CHECK (default_rate >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- `migration` or the staff member's id.
    created_by   text NOT NULL
);

CREATE TABLE rule_set_levels (
    version       integer NOT NULL REFERENCES rule_sets (version),
    level         integer NOT NULL CHECK (level >= 0),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    threshold_eur numeric NOT NULL CHECK (threshold_eur >= 0),
    multiplier    numeric NOT NULL CHECK (multiplier >= 0),
    PRIMARY KEY (version, level)
);

CREATE TABLE rule_set_rates (
    version  integer NOT NULL REFERENCES rule_sets (version),
    category text NOT NULL,
    rate     numeric NOT NULL CHECK (rate >= 0),
    PRIMARY KEY (version, category)
);

CREATE TRIGGER rule_sets_append_only BEFORE UPDATE OR DELETE ON rule_sets
    FOR EACH ROW EXECUTE FUNCTION concierge_refuse_change();
CREATE TRIGGER rule_set_levels_append_only BEFORE UPDATE OR DELETE ON rule_set_levels
    FOR EACH ROW EXECUTE FUNCTION concierge_refuse_change();
CREATE TRIGGER rule_set_rates_append_only BEFORE UPDATE OR DELETE ON rule_set_rates
    FOR EACH ROW EXECUTE FUNCTION concierge_refuse_change();

-- The version in force. Event processing holds it FOR SHARE for the whole transaction; replacing the rules
-- takes it FOR UPDATE, so no batch is ever computed with one version and committed under another.
CREATE TABLE rules_current (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   integer NOT NULL REFERENCES rule_sets (version)
);

INSERT INTO rule_sets (version, default_rate, created_by) VALUES (1, 0.1, 'migration');
INSERT INTO rule_set_levels (version, level, name, threshold_eur, multiplier) VALUES
    (1, 0, 'Bronze', 0, 1.0),
    (1, 1, 'Silver', 1000, 1.1),
    (1, 2, 'Gold', 10000, 1.25),
    (1, 3, 'Platinum', 50000, 1.5),
    (1, 4, 'Diamond', 250000, 2.0);
INSERT INTO rule_set_rates (version, category, rate) VALUES
    (1, 'slots', 1),
    (1, 'table', 0.2),
    (1, 'live', 0.1);
INSERT INTO rules_current (version) VALUES (1);

-- One row per player seen on either topic. Reward columns change only through awards and rollbacks.
CREATE TABLE players (
    player_id            uuid PRIMARY KEY,
    level                integer NOT NULL DEFAULT 0 CHECK (level >= 0),
    vip_points           bigint NOT NULL DEFAULT 0 CHECK (vip_points >= 0),
    lifetime_wagered_eur numeric NOT NULL DEFAULT 0 CHECK (lifetime_wagered_eur >= 0),
    lifetime_won_eur     numeric NOT NULL DEFAULT 0 CHECK (lifetime_won_eur >= 0),
    bets                 bigint NOT NULL DEFAULT 0 CHECK (bets >= 0),
    currency             text,
    registered_at        timestamptz,
    locked               boolean NOT NULL DEFAULT false,
    -- VIP points earned by bets of the UTC hour of the player's latest bet (abnormal accumulation).
    points_hour          timestamptz,
    points_in_hour       bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX players_updated_at ON players (updated_at);

-- Every event whose effects are committed; written in the same transaction as the effects. Event ids are
-- UUID v7 (time-ordered), so housekeeping deletes old rows by primary-key range: no second index to keep.
CREATE TABLE processed_events (
    event_id     uuid PRIMARY KEY,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- What each bet added, with the inputs and rule version that produced it: the verifier recomputes it and a
-- rollback reverses exactly this.
CREATE TABLE awards (
    transfer_id         uuid PRIMARY KEY,
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    event_id            uuid NOT NULL,
    player_id           uuid NOT NULL,
    occurred_at         timestamptz NOT NULL,
    amount_eur          numeric NOT NULL CHECK (amount_eur >= 0),
    game_category       text,
    rule_version        integer NOT NULL REFERENCES rule_sets (version),
    lifetime_before_eur numeric NOT NULL CHECK (lifetime_before_eur >= 0),
    level_before        integer NOT NULL,
    rate                numeric NOT NULL,
    multiplier          numeric NOT NULL,
    vip_points          bigint NOT NULL CHECK (vip_points >= 0),
    leaderboard_points  bigint NOT NULL CHECK (leaderboard_points >= 0),
    level_after         integer NOT NULL,
    -- Set by the rollback that reversed the award (its time and event).
    rolled_back_at      timestamptz,
    rollback_event_id   uuid,
    -- The bet arrived after its rollback: recorded with its inputs, counted nowhere.
    voided              boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX awards_player_occurred ON awards (player_id, occurred_at);
-- Awards arrive in roughly time order: a BRIN index serves the reconciler's window scans for a fraction of
-- a b-tree's upkeep.
CREATE INDEX awards_occurred ON awards USING brin (occurred_at);
CREATE INDEX awards_rolled_back ON awards (rolled_back_at) WHERE rolled_back_at IS NOT NULL;

-- Rollbacks whose bet Concierge has not seen (recorded, no effect; a bet arriving later counts as rolled back).
CREATE TABLE rollback_tombstones (
    transfer_id uuid PRIMARY KEY,
    event_id    uuid NOT NULL,
    player_id   uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Wagering and leaderboard points per board period (UTC): daily, weekly (ISO, from Monday), monthly,
-- all-time (period_start 1970-01-01). `reached_at` is the time of the latest event that changed the row:
-- of two players with equal points, the one who got there first ranks higher.
CREATE TABLE period_totals (
    board        text NOT NULL CHECK (board IN ('daily', 'weekly', 'monthly', 'all-time')),
    period_start date NOT NULL,
    player_id    uuid NOT NULL,
    -- No CHECK (>= 0) here: rows are upserted with deltas, and PostgreSQL checks the proposed row (a
    -- rollback's negative delta) before it sees the conflict. The verifier checks the totals instead.
    wagered_eur  numeric NOT NULL,
    points       bigint NOT NULL,
    reached_at   timestamptz NOT NULL,
    PRIMARY KEY (board, period_start, player_id)
);
CREATE INDEX period_totals_ranking ON period_totals (board, period_start, points DESC, reached_at, player_id);

-- Events to publish (level-ups), written in the same transaction as their cause; the shared relay of
-- casino-messaging publishes them in id order.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL,
    payload      bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Where the verifier is (award sequence number) and which players it checked until when.
CREATE TABLE verifier_state (
    singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    award_seq             bigint NOT NULL DEFAULT 0,
    players_checked_until timestamptz NOT NULL DEFAULT '1970-01-01Z'
);
INSERT INTO verifier_state DEFAULT VALUES;

-- Closed windows the reconciler compared with Vault.
CREATE TABLE reconciliation_windows (
    window_start timestamptz PRIMARY KEY,
    window_end   timestamptz NOT NULL,
    players      integer NOT NULL,
    mismatches   integer NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now()
);
