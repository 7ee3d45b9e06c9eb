import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/**
 * Flink SQL types of database columns, for the Flink runner's JDBC source tables. Flink's JDBC source
 * converts each value by the type the table declares (a `java.lang.Integer` read into a STRING column is a
 * ClassCastException), so columns are declared as flink-connector-jdbc's own catalogs would type them
 * (PostgresTypeMapper and MySqlTypeMapper of flink-connector-jdbc 3.3 / 4.0), from information_schema.
 */

/** One row of information_schema.columns, lower-cased type names; numbers null where the column has none. */
export interface ColumnMeta {
  readonly name: string;
  /** PostgreSQL: udt_name (`int4`, `_text`, `timestamptz`); MySQL / MariaDB: DATA_TYPE (`int`, `varchar`). */
  readonly type: string;
  /** MySQL / MariaDB: COLUMN_TYPE (`int(10) unsigned`, `tinyint(1)`, `bit(1)`); PostgreSQL: the same as type. */
  readonly columnType: string;
  readonly charLength: number | null;
  readonly precision: number | null;
  readonly scale: number | null;
  readonly datetimePrecision: number | null;
}

/** PostgreSQL element types (udt_name) and their Flink types; an array `_x` is ARRAY<type of x>. */
function postgresScalar(c: ColumnMeta, type: string): string | undefined {
  switch (type) {
    case 'bool':
      return 'BOOLEAN';
    case 'bytea':
      return 'BYTES';
    case 'int2':
      return 'SMALLINT';
    case 'int4':
      return 'INT';
    case 'int8':
      return 'BIGINT';
    case 'float4':
      return 'FLOAT';
    case 'float8':
      return 'DOUBLE';
    case 'numeric':
      // numeric without precision: as the mapper (and Spark, SPARK-26538), DECIMAL(38, 18).
      return c.precision !== null && c.precision > 0 ? `DECIMAL(${c.precision}, ${c.scale ?? 0})` : 'DECIMAL(38, 18)';
    case 'bpchar':
      return `CHAR(${c.charLength ?? 1})`;
    case 'varchar':
      return c.charLength !== null ? `VARCHAR(${c.charLength})` : 'STRING';
    case 'text':
      return 'STRING';
    case 'uuid':
      return 'VARCHAR(36)';
    // json and jsonb: not in the mapper, but the Postgres dialect reads a PGobject into a STRING column.
    case 'json':
    case 'jsonb':
      return 'STRING';
    case 'date':
      return 'DATE';
    case 'time':
      return `TIME(${c.datetimePrecision ?? 6})`;
    case 'timestamp':
      return `TIMESTAMP(${c.datetimePrecision ?? 6})`;
    case 'timestamptz':
      return `TIMESTAMP_LTZ(${c.datetimePrecision ?? 6})`;
    default:
      return undefined;
  }
}

/** The Flink type of a PostgreSQL column; undefined when flink-connector-jdbc cannot read it. */
export function postgresFlinkType(c: ColumnMeta): string | undefined {
  if (c.type.startsWith('_')) {
    const element = postgresScalar(c, c.type.slice(1));
    return element === undefined || c.type === '_json' || c.type === '_jsonb' ? undefined : `ARRAY<${element}>`;
  }
  return postgresScalar(c, c.type);
}

/** The Flink type of a MySQL or MariaDB column; undefined when flink-connector-jdbc cannot read it. */
export function mysqlFlinkType(c: ColumnMeta): string | undefined {
  const unsigned = /\bunsigned\b/.test(c.columnType);
  switch (c.type) {
    case 'bit':
      // BIT(1) reads as a Boolean; wider BITs as bytes.
      return (c.precision ?? 1) === 1 ? 'BOOLEAN' : 'BYTES';
    case 'tinyint':
      // Connector/J reads TINYINT(1) as a Boolean (tinyInt1isBit, its default).
      if (/^tinyint\(1\)/.test(c.columnType)) return 'BOOLEAN';
      return unsigned ? 'SMALLINT' : 'TINYINT';
    case 'smallint':
      return unsigned ? 'INT' : 'SMALLINT';
    case 'mediumint':
      return 'INT';
    case 'int':
    case 'integer':
      return unsigned ? 'BIGINT' : 'INT';
    case 'bigint':
      return unsigned ? 'DECIMAL(20, 0)' : 'BIGINT';
    case 'decimal':
    case 'numeric': {
      const p = c.precision ?? 10;
      return `DECIMAL(${unsigned ? p + 1 : p}, ${c.scale ?? 0})`;
    }
    case 'float':
      return 'FLOAT';
    case 'double':
    case 'real':
      return 'DOUBLE';
    case 'char':
      return `CHAR(${c.charLength ?? 1})`;
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
      return c.charLength !== null ? `VARCHAR(${c.charLength})` : 'STRING';
    case 'longtext':
    case 'json':
      return 'STRING';
    case 'date':
      return 'DATE';
    case 'time':
      return `TIME(${c.datetimePrecision ?? 0})`;
    case 'datetime':
    case 'timestamp':
      return `TIMESTAMP(${Math.min(c.datetimePrecision ?? 0, 6)})`;
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
    case 'binary':
    case 'varbinary':
      return 'BYTES';
    default:
      return undefined;
  }
}

/**
 * The Flink types of `columns`, from the table's metadata rows; FAILED_PRECONDITION naming a column that is
 * not in the table or whose type Flink's JDBC connector cannot read. `caseless`: MySQL column names.
 */
export function flinkColumnTypes(
  table: string,
  rows: readonly ColumnMeta[],
  columns: readonly string[],
  map: (c: ColumnMeta) => string | undefined,
  caseless: boolean,
): Record<string, string> {
  const key = (name: string) => (caseless ? name.toLowerCase() : name);
  const byName = new Map(rows.map((r) => [key(r.name), r]));
  const out: Record<string, string> = {};
  for (const column of columns) {
    const meta = byName.get(key(column));
    if (!meta) {
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `column '${column}' is not a column of ${table} (the Flink table declares its columns from the database)`,
      );
    }
    const type = map(meta);
    if (type === undefined) {
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `column '${column}' of ${table} has the type '${meta.columnType}', which Flink's JDBC connector cannot read; leave it out of the mapping or run the group on the embedded runner`,
      );
    }
    out[column] = type;
  }
  return out;
}
