-- A bet refused for insufficient funds used to leave the round it had just opened `open` for ever (the
-- provider sends no result for a refused bet), which counted in vault_open_rounds and paged
-- VaultOpenRoundTooOld an hour later. vault_place_bets (0002) now removes a round that the refused bet
-- itself inserted; a round that already had bets is kept. The function is otherwise unchanged.

CREATE OR REPLACE FUNCTION vault_place_bets(bets JSONB)
RETURNS TABLE (idx INT, code TEXT, http_status INT, response JSONB, transfer_id UUID, balance_after BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    b          JSONB;
    n          INT := -1;
    v_provider TEXT;
    v_tx       TEXT;
    v_hash     BYTEA;
    v_player   UUID;
    v_currency TEXT;
    v_exp      INT;
    v_amount   BIGINT;
    v_round    TEXT;
    v_game     TEXT;
    v_claimed  INT;
    v_existing RECORD;
    v_session  UUID;
    v_locked   BOOLEAN;
    v_min      BIGINT;
    v_max      BIGINT;
    v_rstatus  TEXT;
    v_rplayer  UUID;
    v_rcur     TEXT;
    v_inserted BOOLEAN;
    v_account  BIGINT;
    v_balance  BIGINT;
    v_transfer UUID;
    v_body     JSONB;
BEGIN
    FOR b IN SELECT value FROM jsonb_array_elements(bets) LOOP
        n := n + 1;
        idx := n;
        transfer_id := NULL;
        balance_after := NULL;
        v_transfer := NULL;
        v_provider := b->>'provider';
        v_tx := b->>'transaction_id';
        v_hash := decode(b->>'request_hash', 'hex');
        v_player := (b->>'player_id')::uuid;
        v_currency := b->>'currency';
        v_exp := (b->>'exponent')::int;
        v_amount := (b->>'amount')::bigint;
        v_round := b->>'round_id';
        v_game := b->>'game_id';

        -- Claim the transaction id; a concurrent identical request waits here for the first to commit.
        INSERT INTO game_transactions (provider, transaction_id, operation, request_hash, player_id, round_id,
                                       http_status, response)
        VALUES (v_provider, v_tx, 'bet', v_hash, v_player, v_round, 0, '{}')
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_claimed = ROW_COUNT;
        IF v_claimed = 0 THEN
            SELECT g.operation, g.request_hash, g.http_status, g.response INTO v_existing
            FROM game_transactions g WHERE g.provider = v_provider AND g.transaction_id = v_tx;
            SELECT a.balance INTO v_balance FROM accounts a WHERE a.player_id = v_player AND a.currency = v_currency;
            IF v_existing.operation = 'tombstone' THEN
                code := 'already_rolled_back'; http_status := 422;
                response := vault_game_error(code, format('bet %s was rolled back before it arrived', v_tx),
                                             COALESCE(v_balance, 0), v_currency, v_exp);
            ELSIF v_existing.operation = 'bet' AND v_existing.request_hash = v_hash THEN
                code := 'replay'; http_status := v_existing.http_status; response := v_existing.response;
            ELSE
                code := 'idempotency_conflict'; http_status := 409;
                response := vault_game_error(code,
                    format('transaction %s was already used for a different request', v_tx),
                    COALESCE(v_balance, 0), v_currency, v_exp);
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- Session, player, limits.
        SELECT s.player_id INTO v_session FROM game_sessions s
        WHERE s.token_hash = decode(b->>'session_hash', 'hex') AND s.revoked_at IS NULL AND s.expires_at > now();
        SELECT p.locked INTO v_locked FROM players p WHERE p.id = v_player AND p.role = 'player';
        SELECT a.balance INTO v_balance FROM accounts a WHERE a.player_id = v_player AND a.currency = v_currency;
        IF NOT FOUND THEN v_balance := 0; END IF;
        IF v_locked IS NULL THEN
            DELETE FROM game_transactions g WHERE g.provider = v_provider AND g.transaction_id = v_tx;
            code := 'player_not_found'; http_status := 404;
            response := vault_game_error(code, 'unknown player', NULL, v_currency, v_exp);
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF v_locked THEN
            code := 'player_locked'; http_status := 423;
            response := vault_game_error(code, 'the player is locked and cannot bet', v_balance, v_currency, v_exp);
        ELSIF v_session IS DISTINCT FROM v_player THEN
            DELETE FROM game_transactions g WHERE g.provider = v_provider AND g.transaction_id = v_tx;
            code := 'invalid_session'; http_status := 401;
            response := vault_game_error(code, 'the game session is missing, expired or not this player''s',
                                         v_balance, v_currency, v_exp);
            RETURN NEXT;
            CONTINUE;
        ELSE
            v_min := NULL; v_max := NULL;
            SELECT l.min_bet, l.max_bet INTO v_min, v_max FROM bet_limits l
            WHERE l.currency = v_currency AND l.game_id IN (v_game, '*') ORDER BY (l.game_id = '*') LIMIT 1;
            IF v_min IS NOT NULL AND (v_amount < v_min OR v_amount > v_max) THEN
                code := 'bet_limit_exceeded'; http_status := 422;
                response := vault_game_error(code, format('bets on %s must be between %s and %s %s', v_game,
                    vault_format_minor(v_min, v_exp), vault_format_minor(v_max, v_exp), v_currency),
                    v_balance, v_currency, v_exp);
            ELSE
                -- Open the round, or join it while it is open.
                INSERT INTO rounds (provider, round_id, player_id, game_id, currency, status)
                VALUES (v_provider, v_round, v_player, v_game, v_currency, 'open')
                ON CONFLICT (provider, round_id) DO UPDATE SET status = rounds.status
                RETURNING rounds.status, rounds.player_id, rounds.currency, (rounds.xmax = 0)
                INTO v_rstatus, v_rplayer, v_rcur, v_inserted;
                IF v_rstatus = 'settled' THEN
                    code := 'round_settled'; http_status := 422;
                    response := vault_game_error(code, format('round %s is already settled', v_round),
                                                 v_balance, v_currency, v_exp);
                ELSIF v_rplayer <> v_player OR v_rcur <> v_currency THEN
                    code := 'round_mismatch'; http_status := 409;
                    response := vault_game_error(code, format('round %s belongs to another player or currency', v_round),
                                                 v_balance, v_currency, v_exp);
                ELSE
                    UPDATE accounts a SET balance = a.balance - v_amount
                    WHERE a.owner = v_player::text AND a.currency = v_currency AND a.balance >= v_amount
                    RETURNING a.id, a.balance INTO v_account, v_balance;
                    IF NOT FOUND THEN
                        SELECT a.balance INTO v_balance FROM accounts a
                        WHERE a.player_id = v_player AND a.currency = v_currency;
                        v_balance := COALESCE(v_balance, 0);
                        -- No result follows a refused bet: a round it opened would stay open for ever.
                        IF v_inserted THEN
                            DELETE FROM rounds r WHERE r.provider = v_provider AND r.round_id = v_round;
                        END IF;
                        code := 'insufficient_funds'; http_status := 422;
                        response := vault_game_error(code, format('the balance of %s %s does not cover the bet',
                            vault_format_minor(v_balance, v_exp), v_currency), v_balance, v_currency, v_exp);
                    ELSE
                        v_transfer := (b->>'transfer_id')::uuid;
                        -- The transfer's time is its event's time, so windows agree across services.
                        INSERT INTO transfers (id, kind, debit_account, credit_account, amount, currency, amount_eur,
                            idempotency_key, player_id, player_delta, balance_after, provider, round_id, game_id,
                            game_category, created_at)
                        VALUES (v_transfer, 'bet', v_account, (b->>'house_account')::bigint, v_amount, v_currency,
                            (b->>'amount_eur')::numeric, 'game:' || v_provider || ':' || v_tx, v_player, -v_amount,
                            v_balance, v_provider, v_round, v_game, b->>'game_category',
                            (b->>'occurred_at')::timestamptz);
                        INSERT INTO outbox (event_id, topic, key, payload, headers)
                        VALUES ((b->>'event_id')::uuid, 'vault.transactions.v1', v_player::text,
                            convert_to(jsonb_build_object(
                                'event_id', b->>'event_id',
                                'event_type', 'bet.placed',
                                'schema_version', 1,
                                'occurred_at', b->>'occurred_at',
                                'producer', 'vault',
                                'player_id', v_player,
                                'data', jsonb_build_object(
                                    'transfer_id', v_transfer,
                                    'kind', 'bet',
                                    'currency', v_currency,
                                    'amount', v_amount,
                                    'delta', -v_amount,
                                    'balance_after', v_balance,
                                    'amount_eur', b->>'amount_eur',
                                    'provider', v_provider,
                                    'round_id', v_round,
                                    'game_id', v_game,
                                    'game_category', b->'game_category',
                                    'reference_transfer_id', NULL,
                                    'round_closed', false))::text, 'UTF8'),
                            COALESCE(b->'headers', '[]'::jsonb));
                        code := 'ok'; http_status := 200;
                        transfer_id := v_transfer;
                        balance_after := v_balance;
                        response := jsonb_build_object('status', 'ok', 'transaction_id', v_tx,
                            'transfer_id', v_transfer, 'balance', vault_format_minor(v_balance, v_exp),
                            'currency', v_currency);
                    END IF;
                END IF;
            END IF;
        END IF;
        -- Every outcome that reaches here is final: store it for retries of the same request.
        UPDATE game_transactions g
        SET transfer_id = CASE WHEN vault_place_bets.code = 'ok' THEN v_transfer END,
            http_status = vault_place_bets.http_status,
            response = vault_place_bets.response
        WHERE g.provider = v_provider AND g.transaction_id = v_tx;
        RETURN NEXT;
    END LOOP;
END $$;

-- Rounds left open by refused bets before this migration: open, and no transfer was ever posted in them.
DELETE FROM rounds r
WHERE r.status = 'open'
  AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.provider = r.provider AND t.round_id = r.round_id);
