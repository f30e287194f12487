-- Room-Service: persisted player notifications (read flags, offline catch-up) and chat (history, mutes).
--
-- Notifications are stored once per source event (UNIQUE event_id: the shared consumer group may see an
-- event again after a rebalance or restart). Their BIGSERIAL id is the public id and the catch-up cursor:
-- one player's events come from one partition handled by one consumer at a time, so a player's ids grow in
-- commit order.

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    event_id    UUID NOT NULL UNIQUE,
    player_id   UUID NOT NULL,
    type        TEXT NOT NULL CHECK (type ~ '^[a-z_]{1,64}$'),
    data        JSONB NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    read_at     TIMESTAMPTZ
);

-- Paging a player's notifications newest first, catch-up oldest first, unread counts.
CREATE INDEX notifications_player_id ON notifications (player_id, id);
CREATE INDEX notifications_player_unread ON notifications (player_id, id) WHERE read_at IS NULL;

-- Chat messages. Ids are UUID v7 (time-ordered), so "older than this message" is `id < $before`.
-- A message is deleted by staff with a soft delete: history stops showing it, the row stays for audit.
CREATE TABLE chat_messages (
    id            UUID PRIMARY KEY,
    room          TEXT NOT NULL CHECK (room ~ '^(lobby|game:[A-Za-z0-9_.-]{1,64})$'),
    player_id     UUID NOT NULL,
    text          TEXT NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    client_msg_id TEXT NOT NULL CHECK (char_length(client_msg_id) BETWEEN 1 AND 128),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    deleted_at    TIMESTAMPTZ,
    deleted_by    UUID,
    -- A client retrying a send with the same id gets the original message, never a second one.
    CONSTRAINT chat_messages_client_msg_id_unique UNIQUE (player_id, client_msg_id)
);

CREATE INDEX chat_messages_room_history ON chat_messages (room, id DESC) WHERE deleted_at IS NULL;
-- The rate limit counts a player's recent messages.
CREATE INDEX chat_messages_player_recent ON chat_messages (player_id, created_at DESC);

-- One row per muted player; a mute ends at muted_until (staff can lift it earlier by deleting the row).
CREATE TABLE chat_mutes (
    player_id   UUID PRIMARY KEY,
    muted_until TIMESTAMPTZ NOT NULL,
    muted_by    UUID NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
