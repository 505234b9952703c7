// The expression half of the chat-template parser (internal to parser.cc):
// Jinja2's expression grammar and precedence over a token stream, with the
// token-cursor helpers the statement parser shares by deriving from it.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_EXPRESSION_PARSER_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_EXPRESSION_PARSER_H_

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/chat_template/ast.h"
#include "gateway/chat_template/lexer.h"

namespace moe::chat {

// Deeper nesting than this is rejected instead of overflowing the stack.
inline constexpr int kMaxParseDepth = 200;

class ExpressionParser {
 public:
  explicit ExpressionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

 protected:
  const Token& cur() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  static bool IsName(const Token& t, absl::string_view v) { return t.type == TokenType::kName && t.value == v; }
  static bool IsOp(const Token& t, absl::string_view v) { return t.type == TokenType::kOperator && t.value == v; }
  bool SkipName(absl::string_view v) {
    if (!IsName(cur(), v)) return false;
    next();
    return true;
  }
  bool SkipOp(absl::string_view v) {
    if (!IsOp(cur(), v)) return false;
    next();
    return true;
  }

  absl::Status Error(int line, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
  }
  absl::Status Unexpected(absl::string_view expected) const {
    return Error(cur().line, absl::StrCat("expected ", expected, ", got ", DescribeToken(cur())));
  }
  absl::Status ExpectOp(absl::string_view op) {
    if (!SkipOp(op)) return Unexpected(absl::StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectType(TokenType type, absl::string_view what) {
    if (cur().type != type) return Unexpected(what);
    next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (cur().type != TokenType::kName) return Unexpected("a name");
    std::string name = cur().value;
    next();
    return name;
  }

  // Jinja's parse_tuple: one expression, or a comma list (a tuple).
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr, std::initializer_list<absl::string_view> extra_end,
                                     bool explicit_parens);
  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr);
  // `| name[(args)]` applied to `node` (null for a {% set %} block).
  absl::StatusOr<ExprPtr> ParseFilter(ExprPtr node);

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;

 private:
  ExprPtr Make(Expr::Kind kind, int line);
  ExprPtr Make(Expr::Kind kind, int line, ExprPtr a, ExprPtr b = nullptr);
  bool IsTupleEnd(std::initializer_list<absl::string_view> extra_end) const;
  absl::StatusOr<ExprPtr> ParseCondExpr();
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseBinaryLevel(int level);
  // Levels 0..3: + -, ~, * / // %, ** (each binds tighter than the last).
  absl::StatusOr<ExprPtr> ParseMath1() { return ParseBinaryLevel(0); }
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParsePrimary();
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  // One subscript of `object`: an index (kGetItem) or a slice (kSlice).
  absl::StatusOr<ExprPtr> ParseSubscribed(ExprPtr object);
  absl::Status ParseCallArgs(Expr* e);
  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee);
  absl::StatusOr<ExprPtr> ParseTest(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node);
};

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_EXPRESSION_PARSER_H_
