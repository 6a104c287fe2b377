-- Hand-backs of Cloudflare deliveries (engine/runtime/budget.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: count
-- A message's hand-backs so far.
SELECT count FROM cronwright.handbacks WHERE queue = $1 AND message_id = $2

-- name: add
-- One more hand-back of a message.
INSERT INTO cronwright.handbacks AS h (queue, message_id, count) VALUES ($1, $2, 1)
ON CONFLICT (queue, message_id) DO UPDATE SET count = h.count + 1, updated_at = now()

-- name: forget
-- Acked messages need their counts no more.
DELETE FROM cronwright.handbacks WHERE queue = $1 AND message_id = ANY($2::text[])
