-- payment service schema (MySQL / MariaDB). The embedded SQLite default
-- creates the same tables at start (app/payment/model, common/outbox).
CREATE TABLE IF NOT EXISTS payment (
  payment_no VARCHAR(64) PRIMARY KEY,
  order_no   VARCHAR(64) NOT NULL,
  amount     BIGINT      NOT NULL,
  status     VARCHAR(16) NOT NULL,
  created_at BIGINT      NOT NULL,
  updated_at BIGINT      NOT NULL,
  KEY payment_order_no (order_no)
);

CREATE TABLE IF NOT EXISTS outbox (
  id          BIGINT AUTO_INCREMENT PRIMARY KEY,
  topic       VARCHAR(255) NOT NULL,
  msg_key     VARCHAR(255) NOT NULL,
  payload     MEDIUMTEXT   NOT NULL,
  traceparent VARCHAR(64)  NULL,
  created_at  BIGINT       NOT NULL
);
