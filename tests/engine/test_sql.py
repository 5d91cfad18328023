"""Key-name rules in SQL INSERTs: columns paired with values by position, in every row."""

from __future__ import annotations

import pytest

from redactor.engine import Redactor

ROWS = [
    ("ana@example.com", "Tr0ub4dor&3x"),
    ("bo@example.com", "correct-horse-9"),
    ("cy@ex.io", "pa''ss9Zx"),  # a quote doubled inside the literal
]


def _values(rows: list[tuple[str, str]]) -> str:
    return ", ".join(f"('{email}', '{password}')" for email, password in rows)


def _unmasked(out: str, rows: list[tuple[str, str]]) -> list[int]:
    return [i for i, (_, password) in enumerate(rows) if password in out]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (email, password) VALUES {values}",
        'INSERT INTO "public"."users" ("email", "db_password") VALUES {values} RETURNING "id"',
        "insert into users(email,password)values{values} ON CONFLICT DO NOTHING",
    ],
)
def test_every_row_of_a_multi_row_insert(engine: Redactor, statement: str) -> None:
    out = engine.redact(statement.format(values=_values(ROWS)))
    assert _unmasked(out, ROWS) == [], out
    assert all(email in out for email, _ in ROWS)  # other columns stay readable


def test_bound_parameters_one_tuple_or_a_list_of_them(engine: Redactor) -> None:
    one = (
        "INSERT INTO users (email, password) VALUES (%s, %s) "
        "args=('ana@example.com', 'Tr0ub4dor&3x'), kw={}"
    )
    out = engine.redact(one)
    assert "Tr0ub4dor&3x" not in out and out.endswith(", kw={}")
    many = f"INSERT INTO users (email, password) VALUES ($1, $2) params=[{_values(ROWS)}]"
    out = engine.redact(many)
    assert _unmasked(out, ROWS) == [], out
    assert "VALUES ($1, $2)" in out  # placeholders are not values


def test_what_follows_the_rows_is_not_a_row(engine: Redactor) -> None:
    text = (
        "INSERT INTO users (email, password) VALUES ('a@b.io', 'Tr0ub4dor&3x') "
        "RETURNING id, ('x', 'kept-as-is')"
    )
    out = engine.redact(text)
    assert "Tr0ub4dor&3x" not in out and out.endswith("('x', 'kept-as-is')")


def test_an_insert_without_sensitive_columns_is_untouched(engine: Redactor) -> None:
    text = "INSERT INTO orders (id, note) VALUES (1, 'first'), (2, 'second')"
    assert engine.redact(text) is text


def test_thousands_of_rows(engine: Redactor) -> None:
    rows = [(f"u{i}@example.com", f"pw{i}-Zx9!q") for i in range(5000)]
    out = engine.redact(f"INSERT INTO users (email, password) VALUES {_values(rows)}")
    assert _unmasked(out, rows) == []


@pytest.mark.parametrize(
    ("statement", "secret", "kept"),
    [
        (
            "LOG:  execute <unnamed>: INSERT INTO users (email, password) VALUES ($1, $2) "
            "DETAIL:  parameters: $1 = 'ana@example.com', $2 = 'Tr0ub4dor&3x'",
            "Tr0ub4dor&3x",
            "$1 = 'ana@example.com'",
        ),
        (
            "LOG:  execute S_1: UPDATE users SET password = $1, updated_at = now() "
            "WHERE id = $2 DETAIL:  parameters: $1 = 'Tr0ub4dor&3x', $2 = '42'",
            "Tr0ub4dor&3x",
            "$2 = '42'",
        ),
        (
            "LOG:  execute S_2: SELECT id FROM users WHERE email = $1 AND api_key = $2 "
            "DETAIL:  parameters: $1 = 'ana@example.com', $2 = 'ak_9f8e7d6c5b4a3928'",
            "ak_9f8e7d6c5b4a3928",
            "$1 = 'ana@example.com'",
        ),
    ],
)
def test_postgres_bound_parameters(
    engine: Redactor, statement: str, secret: str, kept: str
) -> None:
    # PostgreSQL logs the values apart from the statement; a placeholder takes its column,
    # from the INSERT's VALUES or a "column = $n", and other columns' values stay readable.
    out = engine.redact(statement)
    assert secret not in out and kept in out


def test_postgres_parameters_without_a_covered_column_are_untouched(engine: Redactor) -> None:
    text = "LOG:  statement: SELECT $1::text AS note DETAIL:  parameters: $1 = 'nothing here'"
    assert engine.redact(text) is text


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        # Entity Framework: values listed by name, then the statement
        (
            "Executed DbCommand (81ms) [Parameters=[@p0='NYjPw3r7jipXr5zwzDKgGs4' (Nullable = "
            "false) (Size = 23), @p1='1139'], CommandType='Text'] INSERT INTO \"ApiClients\" "
            '("OauthClientSecret", "CustomerId") VALUES (@p0, @p1)',
            "NYjPw3r7jipXr5zwzDKgGs4",
            "@p1='1139'",
        ),
        (
            "Executed DbCommand (3ms) [Parameters=[@__token_0='ZmM3NjQ2YjE5OTk3ZjEx' (Size = 4000)]"
            ", CommandType='Text'] SELECT TOP(1) [u].[Id] FROM [Users] AS [u] WHERE "
            "[u].[RefreshToken] = @__token_0",
            "ZmM3NjQ2YjE5OTk3ZjEx",
            "SELECT TOP(1)",
        ),
        # SQL Server's sp_executesql: the values after the string that declares them
        (
            "exec sp_executesql N'UPDATE dbo.Users SET Password=@P0, ModifiedBy=@P1 WHERE Id=@P2',"
            "N'@P0 nvarchar(64),@P1 nvarchar(32),@P2 int',@P0=N'Hunter2!xqz',@P1=N'rph_ana',@P2=5",
            "Hunter2!xqz",
            "@P1=N'rph_ana',@P2=5",
        ),
        # Prisma: $n is the n-th value of the list after the statement
        (
            'prisma:query UPDATE "Integration" SET "secret" = $1 WHERE "Integration"."id" = $2 '
            'Params: ["Galaxy3671!",589] Duration: 47ms',
            "Galaxy3671!",
            ",589] Duration: 47ms",
        ),
        # Ecto: the list ends the line
        (
            'QUERY OK source="credentials" db=5.9ms UPDATE "credentials" SET "secret" = $1, '
            '"updated_at" = $2 WHERE "id" = $3 ["Violet246!", ~N[2024-05-17 11:57:45], 42]',
            "Violet246!",
            "~N[2024-05-17 11:57:45], 42]",
        ),
        # Doctrine: ? counts in order, the statement logged twice, values keyed 1, 2, ...
        (
            "doctrine.DEBUG: Executing statement: UPDATE integration SET secret = ? WHERE id = ? "
            '(parameters: {params}, types: {types}) {"sql":"UPDATE integration SET secret = ? '
            'WHERE id = ?","params":{"1":"0d46e24f60f5aa5fcbb22f52706cc726","2":432}}',
            "0d46e24f60f5aa5fcbb22f52706cc726",
            '"2":432',
        ),
        # Django: %s in order, the values as args=(...)
        (
            'django.db.backends: (0.001) SELECT "p"."id" FROM "p" WHERE "p"."name" = %s AND '
            "\"p\".\"api_key\" = %s LIMIT 21; args=('acme', 'K0AC6lumIWM7FIz8nGOPRGq5'); "
            "alias=default",
            "K0AC6lumIWM7FIz8nGOPRGq5",
            "args=('acme', ",
        ),
    ],
)
def test_values_bound_by_name_or_position(
    engine: Redactor, line: str, secret: str, kept: str
) -> None:
    out = engine.redact(line)
    assert secret not in out and kept in out


def test_positional_values_of_uncovered_columns_are_untouched(engine: Redactor) -> None:
    text = 'prisma:query SELECT "id" FROM "User" WHERE "email" = $1 Params: ["ana@example.com"]'
    assert engine.redact(text) is text
    text = "celery task ok args=('report', 42) kwargs={}"
    assert engine.redact(text) is text


def test_a_long_line_of_brackets_stays_linear(engine: Redactor) -> None:
    # The trailing list is found by walking back from the end, at most 8 KB: no search per "[".
    text = "QUERY OK UPDATE t SET password = $1 " + " [x" * 200_000 + " [1]"
    out = engine.redact(text)
    assert out.endswith(" [1]")


def test_a_secret_repeated_by_an_orm_is_masked_every_time(engine: Redactor) -> None:
    line = (
        "django.db.backends: (0.001) SELECT 1 FROM p WHERE p.api_key = 'K0AC6lumIWM7FIz8nGOPRGq5' "
        "LIMIT 21; args=('K0AC6lumIWM7FIz8nGOPRGq5',); alias=default"
    )
    out = engine.redact(line)
    assert "K0AC6lumIWM7FIz8nGOPRGq5" not in out and out.endswith("alias=default")


def test_a_flood_of_one_repeated_secret_fails_closed(engine: Redactor) -> None:
    # more repeats than a log line holds: the value is masked whole, in linear time
    out = engine.redact("password=Zx9Qw3kLmN0p " + "Zx9Qw3kLmN0p " * 5000)
    assert "Zx9Qw3kLmN0p" not in out


def test_a_number_found_is_masked_where_it_is_spelled_digit_by_digit(engine: Redactor) -> None:
    # A voice platform logs what the caller keyed, one digit at a time, beside what it understood.
    line = (
        'NLSML <result><interpretation grammar="builtin:grammar/creditcard" confidence="73">'
        '<input mode="dtmf">4 1 4 7 2 0 7 3 4 2 9 0 7 8 6 9</input>'
        "<instance>4147207342907869</instance></interpretation></result>"
    )
    out = engine.redact(line)
    digits = "".join(c for c in out if c.isdigit())
    assert "414720734290" not in digits and out.count("7869#") == 2


def test_a_number_found_with_separators_is_masked_as_its_digits_too(engine: Redactor) -> None:
    # A warehouse's load error quotes the field, then the rejected record holds it unformatted.
    line = (
        "Numeric value '348-74-4802' is not recognized  Row 65658, column "
        '"CUSTOMERS_STG"["SSN_NUM":4]  Rejected record: 69600,Daniel,Okafor,348744802'
    )
    out = engine.redact(line)
    assert "34874" not in out.replace("-", "") and "69600,Daniel,Okafor," in out
    # Other numbers that only hold the digits are left alone.
    out = engine.redact("card 4111 1111 1111 1111 then id 41111111111111112 ok")
    assert "41111111111111112" in out
