//! Flight SQL metadata: catalogs, schemas, tables (with filters and Arrow schemas), table
//! types, SqlInfo, XDBC type info and keys — what JDBC, ADBC and BI tools ask before they query.
//!
//! Everything is read from the engine's live catalog (so feature groups, views and system
//! tables appear as soon as they are defined) through arrow-flight's builders, which apply the
//! clients' filters (`%`/`_` patterns, table types).

use std::sync::{Arc, LazyLock};

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData,
    XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, Nullable, Searchable, SqlInfo, SqlNullOrdering,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, SupportedSqlGrammar, XdbcDataType,
    XdbcDatetimeSubcode,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::error::DataFusionError;
use datafusion::error::Result;
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;

use crate::engine::{Engine, SYSTEM_SCHEMA, USER_SCHEMA};
use crate::principal::Principal;
use crate::registry::RegistryState;

/// The metadata commands of Flight SQL: each is described (its result schema, for
/// `GetFlightInfo`) and answered (its rows, for `DoGet`) here and nowhere else.
#[derive(Debug, Clone)]
pub enum MetadataCommand {
    Catalogs(CommandGetCatalogs),
    Schemas(CommandGetDbSchemas),
    Tables(CommandGetTables),
    TableTypes(CommandGetTableTypes),
    SqlInfo(CommandGetSqlInfo),
    XdbcTypeInfo(CommandGetXdbcTypeInfo),
    PrimaryKeys(CommandGetPrimaryKeys),
    ExportedKeys(CommandGetExportedKeys),
    ImportedKeys(CommandGetImportedKeys),
    CrossReference(CommandGetCrossReference),
}

impl MetadataCommand {
    /// The command's name, for metrics and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Catalogs(_) => "catalogs",
            Self::Schemas(_) => "schemas",
            Self::Tables(_) => "tables",
            Self::TableTypes(_) => "table_types",
            Self::SqlInfo(_) => "sql_info",
            Self::XdbcTypeInfo(_) => "xdbc_type_info",
            Self::PrimaryKeys(_) => "primary_keys",
            Self::ExportedKeys(_) => "exported_keys",
            Self::ImportedKeys(_) => "imported_keys",
            Self::CrossReference(_) => "cross_reference",
        }
    }

    /// The result schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            Self::Catalogs(_) => catalogs_schema(),
            Self::Schemas(_) => db_schemas_schema(),
            Self::Tables(c) => tables_schema(c.include_schema),
            Self::TableTypes(_) => table_types_schema(),
            Self::SqlInfo(_) => SQL_INFO.schema(),
            Self::XdbcTypeInfo(_) => XDBC_INFO.schema(),
            Self::PrimaryKeys(_) => primary_keys_schema(),
            Self::ExportedKeys(_) | Self::ImportedKeys(_) | Self::CrossReference(_) => {
                foreign_keys_schema()
            }
        }
    }

    /// The result, from the engine's live catalog (brought up to the registry first). Tables
    /// the principal may not read are not listed (nor their keys).
    pub async fn answer(self, engine: &Engine, principal: &Principal) -> Result<RecordBatch> {
        let session = crate::sql::SqlSession::new(engine);
        let visible = session.visible_names(principal);
        let may_see = |schema: &str, table: &str| schema != USER_SCHEMA || visible(table);
        let live = matches!(
            self,
            Self::Catalogs(_) | Self::Schemas(_) | Self::Tables(_) | Self::PrimaryKeys(_)
        );
        if live {
            engine.refresh().await?;
        }
        let state = engine.registry().state();
        match self {
            Self::Catalogs(_) => catalogs(engine.ctx()),
            Self::Schemas(c) => db_schemas(engine.ctx(), c),
            Self::Tables(c) => tables(engine.ctx(), c, &state, &may_see).await,
            Self::PrimaryKeys(c)
                if !may_see(c.db_schema.as_deref().unwrap_or(USER_SCHEMA), &c.table) =>
            {
                primary_keys(None, None, "", &state)
            }
            Self::PrimaryKeys(c) => primary_keys(
                c.catalog.as_deref(),
                c.db_schema.as_deref(),
                &c.table,
                &state,
            ),
            Self::TableTypes(_) => table_types(),
            Self::SqlInfo(c) => c.into_builder(&SQL_INFO).build().map_err(flight_err),
            Self::XdbcTypeInfo(c) => c.into_builder(&XDBC_INFO).build().map_err(flight_err),
            Self::ExportedKeys(_) | Self::ImportedKeys(_) | Self::CrossReference(_) => {
                Ok(RecordBatch::new_empty(foreign_keys_schema()))
            }
        }
    }
}

/// Table types FStore reports.
pub const TABLE_TYPES: [&str; 4] = ["TABLE", "VIEW", "SYSTEM TABLE", "FEATURE GROUP"];

fn table_type_name(schema: &str, table: &str, t: TableType, state: &RegistryState) -> &'static str {
    if schema == SYSTEM_SCHEMA || schema == "information_schema" {
        return "SYSTEM TABLE";
    }
    if schema == USER_SCHEMA && state.feature_groups.contains_key(table) {
        return "FEATURE GROUP";
    }
    match t {
        TableType::View => "VIEW",
        TableType::Base | TableType::Temporary => "TABLE",
    }
}

pub fn catalogs(ctx: &SessionContext) -> Result<RecordBatch> {
    let mut b = GetCatalogsBuilder::new();
    let mut names = ctx.catalog_names();
    names.sort();
    for c in names {
        b.append(c);
    }
    b.build().map_err(flight_err)
}

pub fn catalogs_schema() -> SchemaRef {
    GetCatalogsBuilder::new().schema()
}

pub fn db_schemas(ctx: &SessionContext, cmd: CommandGetDbSchemas) -> Result<RecordBatch> {
    let mut b = cmd.into_builder();
    for c in sorted(ctx.catalog_names()) {
        if let Some(catalog) = ctx.catalog(&c) {
            for s in sorted(catalog.schema_names()) {
                b.append(&c, s);
            }
        }
    }
    b.build().map_err(flight_err)
}

pub fn db_schemas_schema() -> SchemaRef {
    CommandGetDbSchemas::default().into_builder().schema()
}

pub async fn tables(
    ctx: &SessionContext,
    cmd: CommandGetTables,
    state: &RegistryState,
    may_see: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<RecordBatch> {
    let mut b = cmd.into_builder();
    for c in sorted(ctx.catalog_names()) {
        let Some(catalog) = ctx.catalog(&c) else {
            continue;
        };
        for s in sorted(catalog.schema_names()) {
            let Some(schema) = catalog.schema(&s) else {
                continue;
            };
            for t in sorted(schema.table_names()) {
                if !may_see(&s, &t) {
                    continue;
                }
                let Some(provider) = schema.table(&t).await? else {
                    continue;
                };
                b.append(
                    &c,
                    &s,
                    &t,
                    table_type_name(&s, &t, provider.table_type(), state),
                    &provider.schema(),
                )
                .map_err(flight_err)?;
            }
        }
    }
    b.build().map_err(flight_err)
}

pub fn tables_schema(include_schema: bool) -> SchemaRef {
    CommandGetTables {
        include_schema,
        ..Default::default()
    }
    .into_builder()
    .schema()
}

pub fn table_types() -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        table_types_schema(),
        vec![Arc::new(StringArray::from_iter_values(TABLE_TYPES))],
    )?)
}

pub fn table_types_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )]))
}

fn flight_err(e: FlightError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `CommandGetPrimaryKeys` result schema (Flight SQL spec).
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// Primary keys: a feature group's entity keys (plain tables have none).
pub fn primary_keys(
    catalog: Option<&str>,
    schema: Option<&str>,
    table: &str,
    state: &RegistryState,
) -> Result<RecordBatch> {
    let ours = catalog.is_none_or(|c| c == crate::engine::CATALOG)
        && schema.is_none_or(|s| s == USER_SCHEMA);
    let keys: Vec<String> = match state.feature_groups.get(table) {
        Some(g) if ours => g.def.entity.clone(),
        _ => vec![],
    };
    let n = keys.len();
    Ok(RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            Arc::new(StringArray::from(vec![Some(crate::engine::CATALOG); n])),
            Arc::new(StringArray::from(vec![Some(USER_SCHEMA); n])),
            Arc::new(StringArray::from(vec![table; n])),
            Arc::new(StringArray::from(keys)),
            Arc::new(StringArray::from(vec![Some("entity"); n])),
            Arc::new(datafusion::arrow::array::Int32Array::from_iter_values(
                1..=n as i32,
            )),
        ],
    )?)
}

/// Result schema of exported / imported keys and cross references (Flight SQL spec).
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What the server says about itself (`GetSqlInfo`).
pub static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "FStore");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "59.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        SupportedSqlGrammar::SqlCoreGrammar as i32 | SupportedSqlGrammar::SqlMinimumGrammar as i32,
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.append(SqlInfo::SqlMaxColumnNameLength, 0i64);
    b.append(SqlInfo::SqlMaxStatementLength, MAX_SQL_BYTES as i64);
    b.append(SqlInfo::SqlMaxStatements, 0i64);
    b.append(SqlInfo::SqlMaxTableNameLength, 0i64);
    let keywords: Vec<String> = datafusion::sql::sqlparser::keywords::ALL_KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    b.append(SqlInfo::SqlKeywords, keywords);
    b.append(SqlInfo::SqlNumericFunctions, &NUMERIC_FUNCTIONS[..]);
    b.append(SqlInfo::SqlStringFunctions, &STRING_FUNCTIONS[..]);
    b.append(SqlInfo::SqlDatetimeFunctions, &DATETIME_FUNCTIONS[..]);
    b.append(
        SqlInfo::SqlSystemFunctions,
        &["version", "current_user"][..],
    );
    b.build().expect("static SqlInfo is valid")
});

/// The longest SQL text the server accepts.
pub const MAX_SQL_BYTES: usize = 1 << 20;

const NUMERIC_FUNCTIONS: [&str; 22] = [
    "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "exp", "floor", "ln", "log", "log10",
    "log2", "pi", "power", "random", "round", "signum", "sin", "sqrt", "tan", "trunc",
];
const STRING_FUNCTIONS: [&str; 18] = [
    "ascii",
    "btrim",
    "character_length",
    "concat",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "repeat",
    "replace",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "substr",
    "upper",
];
const DATETIME_FUNCTIONS: [&str; 9] = [
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "now",
    "to_timestamp",
    "time_bucket",
];

/// The SQL types FStore reports (`GetXdbcTypeInfo`).
pub static XDBC_INFO: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let ty = |name: &str,
              data_type: XdbcDataType,
              prefix: Option<&str>,
              subcode: Option<XdbcDatetimeSubcode>,
              radix: Option<i32>| XdbcTypeInfo {
        type_name: name.to_string(),
        data_type,
        column_size: None,
        literal_prefix: prefix.map(str::to_string),
        literal_suffix: prefix.map(str::to_string),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
        searchable: Searchable::Full,
        unsigned_attribute: radix.map(|_| false),
        fixed_prec_scale: false,
        auto_increment: radix.map(|_| false),
        local_type_name: Some(name.to_string()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: subcode,
        num_prec_radix: radix,
        interval_precision: None,
    };
    b.append(ty("BOOLEAN", XdbcDataType::XdbcBit, None, None, None));
    b.append(ty(
        "TINYINT",
        XdbcDataType::XdbcTinyint,
        None,
        None,
        Some(10),
    ));
    b.append(ty(
        "SMALLINT",
        XdbcDataType::XdbcSmallint,
        None,
        None,
        Some(10),
    ));
    b.append(ty(
        "INTEGER",
        XdbcDataType::XdbcInteger,
        None,
        None,
        Some(10),
    ));
    b.append(ty("BIGINT", XdbcDataType::XdbcBigint, None, None, Some(10)));
    b.append(ty("REAL", XdbcDataType::XdbcReal, None, None, Some(2)));
    b.append(ty("DOUBLE", XdbcDataType::XdbcDouble, None, None, Some(2)));
    b.append(ty(
        "DECIMAL",
        XdbcDataType::XdbcDecimal,
        None,
        None,
        Some(10),
    ));
    b.append(ty(
        "VARCHAR",
        XdbcDataType::XdbcVarchar,
        Some("'"),
        None,
        None,
    ));
    b.append(ty("BINARY", XdbcDataType::XdbcBinary, None, None, None));
    b.append(ty(
        "DATE",
        XdbcDataType::XdbcDate,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        None,
    ));
    b.append(ty(
        "TIME",
        XdbcDataType::XdbcTime,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
        None,
    ));
    b.append(ty(
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        None,
    ));
    b.append(ty(
        "INTERVAL",
        XdbcDataType::XdbcInterval,
        Some("'"),
        None,
        None,
    ));
    b.build().expect("static XDBC info is valid")
});

/// Names of the schemas a user's tables live in (for documentation of `GetTables`).
pub const USER_SCHEMAS: [&str; 1] = [USER_SCHEMA];
