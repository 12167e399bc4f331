-- order service schema (MySQL / MariaDB). The embedded SQLite default
-- creates the same tables at start (app/order/model, common/consume).
CREATE TABLE IF NOT EXISTS orders (
  order_no   VARCHAR(64) PRIMARY KEY,
  user_id    BIGINT      NOT NULL,
  amount     BIGINT      NOT NULL,
  state      VARCHAR(16) NOT NULL,
  close_at   BIGINT      NOT NULL,
  created_at BIGINT      NOT NULL,
  updated_at BIGINT      NOT NULL,
  KEY orders_user (user_id, created_at),
  KEY orders_close (state, close_at)
);

-- idempotency keys when Redis is not used (common/consume.SQLDedup)
CREATE TABLE IF NOT EXISTS processed_events (
  event_id   VARCHAR(64) PRIMARY KEY,
  state      VARCHAR(16) NOT NULL,
  updated_at BIGINT      NOT NULL
);
