//! Turning CSV rows into canonical records: a column mapping says which
//! header feeds which canonical field; presets are mappings for well-known
//! exports.

use serde_json::{json, Map, Value};

/// One canonical field and the headers that may carry it (the first present
/// non-empty one wins).
pub struct Column {
    pub field: String,
    pub headers: Vec<String>,
}

pub struct Mapping {
    pub kind: &'static str,
    pub columns: Vec<Column>,
    /// How to read values of one preset that need more than a copy.
    pub dialect: Dialect,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Plain,
    /// Shopify exports prefix ids and phones with `'` to keep spreadsheets
    /// from mangling them.
    Shopify,
    /// Taobao/Tmall seller-centre exports: GMT+8 local times, Chinese
    /// statuses, masked buyer names.
    Taobao,
}

fn column(field: &str, headers: &[&str]) -> Column {
    Column {
        field: field.to_string(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
    }
}

pub fn preset(name: &str) -> Option<Mapping> {
    match name {
        "shopify-customers" => Some(Mapping {
            kind: "customer",
            dialect: Dialect::Shopify,
            columns: vec![
                column("external_id", &["Customer ID", "ID"]),
                column("first_name", &["First Name"]),
                column("last_name", &["Last Name"]),
                column("email", &["Email"]),
                column("phone", &["Phone", "Default Address Phone"]),
                column("address.line1", &["Default Address Address1", "Address1"]),
                column("address.line2", &["Default Address Address2", "Address2"]),
                column("address.city", &["Default Address City", "City"]),
                column(
                    "address.region",
                    &["Default Address Province Code", "Province Code"],
                ),
                column("address.postal_code", &["Default Address Zip", "Zip"]),
                column(
                    "address.country",
                    &["Default Address Country Code", "Country Code"],
                ),
                column("tags", &["Tags"]),
                column(
                    "accepts_email_marketing",
                    &["Accepts Email Marketing", "Accepts Marketing"],
                ),
            ],
        }),
        "taobao-orders" => Some(Mapping {
            kind: "order",
            dialect: Dialect::Taobao,
            columns: vec![
                column("external_id", &["订单编号"]),
                column("customer_external_id", &["买家会员名"]),
                column("name", &["收货人姓名"]),
                column("phone", &["联系手机", "联系电话"]),
                column("total", &["买家实际支付金额", "总金额"]),
                column("status", &["订单状态"]),
                column("created_at", &["订单创建时间"]),
                column("updated_at", &["订单付款时间", "订单创建时间"]),
                column("shipping_address.line1", &["收货地址"]),
                column("line_items.title", &["宝贝标题"]),
                column("line_items.quantity", &["宝贝总数量"]),
            ],
        }),
        _ => None,
    }
}

/// A user-given mapping: `field=Header,field=Header`.
pub fn custom(kind: &str, spec: &str) -> Result<Mapping, String> {
    let kind = match kind {
        "customer" => "customer",
        "order" => "order",
        "review" => "review",
        "message" => "message",
        other => {
            return Err(format!(
                "--kind {other} is not one of customer, order, review, message"
            ))
        }
    };
    let mut columns = Vec::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, header) = pair
            .split_once('=')
            .ok_or_else(|| format!("mapping entry {pair:?} is not field=Header"))?;
        columns.push(column(field.trim(), &[header.trim()]));
    }
    if columns.is_empty() {
        return Err("the mapping names no columns".into());
    }
    Ok(Mapping {
        kind,
        columns,
        dialect: Dialect::Plain,
    })
}

impl Mapping {
    /// Builds the canonical record of one row. `imported_at` stands in for
    /// `updated_at` when the export has no modification time.
    pub fn record(&self, headers: &[String], row: &[String], imported_at: &str) -> Value {
        let mut record = Map::new();
        record.insert("kind".into(), json!(self.kind));
        for column in &self.columns {
            let value = column
                .headers
                .iter()
                .filter_map(|h| headers.iter().position(|x| x.trim() == h.as_str()))
                .filter_map(|i| row.get(i))
                .map(|v| self.clean(v))
                .find(|v| !v.is_empty());
            if let Some(value) = value {
                if let Some(value) = self.convert(&column.field, value) {
                    set(&mut record, &column.field, value);
                }
            }
        }
        if !record.contains_key("updated_at") {
            record.insert("updated_at".into(), json!(imported_at));
        }
        self.finish(&mut record);
        Value::Object(record)
    }

    fn clean(&self, value: &str) -> String {
        let value = value.trim();
        match self.dialect {
            Dialect::Shopify => value.trim_start_matches('\'').to_string(),
            // Taobao exports wrap long numbers as ="123" to keep them text.
            Dialect::Taobao => value
                .trim_start_matches('=')
                .trim_matches('"')
                .trim()
                .to_string(),
            Dialect::Plain => value.to_string(),
        }
    }

    fn convert(&self, field: &str, value: String) -> Option<Value> {
        match (self.dialect, field) {
            (_, "accepts_email_marketing") => Some(json!(matches!(
                value.to_ascii_lowercase().as_str(),
                "yes" | "true" | "1"
            ))),
            (_, "tags") => Some(json!(value
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>())),
            (_, "line_items.quantity") => value.parse::<i64>().ok().map(|q| json!(q)),
            (Dialect::Taobao, "created_at" | "updated_at") => {
                taobao_time(&value).map(Value::String)
            }
            (Dialect::Taobao, "status") => Some(json!(taobao_status(&value))),
            // A masked member name (`t**1`) identifies nobody.
            (Dialect::Taobao, "customer_external_id") if value.contains('*') => None,
            _ => Some(Value::String(value)),
        }
    }

    /// Fills what the canonical format needs and a preset implies.
    fn finish(&self, record: &mut Map<String, Value>) {
        if self.dialect == Dialect::Taobao {
            record.entry("currency").or_insert(json!("CNY"));
        }
        if let Some(Value::Object(mut item)) = record.get("line_items").cloned() {
            // An export row has the order's total and item count, not a unit price.
            if !item.contains_key("price") {
                let quantity = item
                    .get("quantity")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    .max(1);
                let total = record
                    .get("total")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<rust_decimal::Decimal>().ok());
                if let Some(total) = total {
                    let unit = (total / rust_decimal::Decimal::from(quantity)).round_dp(2);
                    item.insert("price".into(), json!(unit.to_string()));
                    item.insert("quantity".into(), json!(quantity));
                }
            }
            record.insert("line_items".into(), json!([item]));
        }
        // Customer exports carry one email and phone; canonical customers carry lists.
        if self.kind == "customer" {
            for (one, many) in [("email", "emails"), ("phone", "phones")] {
                if let Some(value) = record.remove(one) {
                    record.insert(many.into(), json!([value]));
                }
            }
            let first = record.remove("first_name");
            let last = record.remove("last_name");
            if !record.contains_key("name") {
                let parts: Vec<String> = [first, last]
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                if !parts.is_empty() {
                    record.insert("name".into(), json!(parts.join(" ")));
                }
            }
        }
    }
}

/// Sets `a.b` paths, creating objects on the way.
fn set(record: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            record.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = record.entry(head.to_string()).or_insert_with(|| json!({}));
            if let Value::Object(child) = child {
                set(child, rest, value);
            }
        }
    }
}

/// `2024-01-31 20:15:00` in China Standard Time, as RFC 3339.
fn taobao_time(value: &str) -> Option<String> {
    let local = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S").ok()?;
    let china = chrono::FixedOffset::east_opt(8 * 3600)?;
    Some(local.and_local_timezone(china).single()?.to_rfc3339())
}

fn taobao_status(value: &str) -> &'static str {
    match value {
        v if v.contains("等待买家付款") => "pending",
        v if v.contains("交易成功") => "completed",
        v if v.contains("交易关闭") => "cancelled",
        v if v.contains("卖家已发货") => "shipped",
        v if v.contains("买家已付款") => "paid",
        v if v.contains("退款") => "refunded",
        _ => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        pairs
            .iter()
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .unzip()
    }

    #[test]
    fn shopify_customer_export_row() {
        let (headers, values) = row(&[
            ("Customer ID", "'7162148765"),
            ("First Name", "Ada"),
            ("Last Name", "Lovelace"),
            ("Email", "ada@example.com"),
            ("Accepts Email Marketing", "yes"),
            ("Default Address City", "London"),
            ("Default Address Country Code", "GB"),
            ("Phone", "'+447946000000"),
            ("Tags", "vip, wholesale"),
        ]);
        let record =
            preset("shopify-customers")
                .unwrap()
                .record(&headers, &values, "2026-01-01T00:00:00Z");
        assert_eq!(record["kind"], "customer");
        assert_eq!(record["external_id"], "7162148765");
        assert_eq!(record["name"], "Ada Lovelace");
        assert_eq!(record["emails"], json!(["ada@example.com"]));
        assert_eq!(record["phones"], json!(["+447946000000"]));
        assert_eq!(record["address"]["city"], "London");
        assert_eq!(record["tags"], json!(["vip", "wholesale"]));
        assert_eq!(record["accepts_email_marketing"], true);
        assert_eq!(record["updated_at"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn taobao_order_export_row() {
        let (headers, values) = row(&[
            ("订单编号", "=\"3021234567890123\""),
            ("买家会员名", "t**1"),
            ("收货人姓名", "王伟"),
            ("联系手机", "138****5678"),
            ("买家实际支付金额", "199.00"),
            ("订单状态", "交易成功"),
            ("订单创建时间", "2026-03-01 20:15:00"),
            ("订单付款时间", "2026-03-01 20:16:30"),
            ("宝贝标题", "龙井茶 250g"),
            ("宝贝总数量", "2"),
        ]);
        let record =
            preset("taobao-orders")
                .unwrap()
                .record(&headers, &values, "2026-01-01T00:00:00Z");
        assert_eq!(record["external_id"], "3021234567890123");
        assert!(
            record.get("customer_external_id").is_none(),
            "masked member names are dropped"
        );
        assert_eq!(record["status"], "completed");
        assert_eq!(record["currency"], "CNY");
        assert_eq!(record["total"], "199.00");
        assert_eq!(record["created_at"], "2026-03-01T20:15:00+08:00");
        assert_eq!(record["updated_at"], "2026-03-01T20:16:30+08:00");
        assert_eq!(
            record["line_items"],
            json!([{"title": "龙井茶 250g", "quantity": 2, "price": "99.50"}])
        );
    }

    #[test]
    fn custom_mappings_are_parsed_and_checked() {
        let mapping = custom("customer", "external_id=No, email=E-mail").unwrap();
        let (headers, values) = row(&[("No", "42"), ("E-mail", "x@example.com")]);
        let record = mapping.record(&headers, &values, "2026-01-01T00:00:00Z");
        assert_eq!(record["external_id"], "42");
        assert_eq!(record["emails"], json!(["x@example.com"]));
        assert!(custom("customer", "email").is_err());
        assert!(custom("invoice", "a=b").is_err());
    }
}
