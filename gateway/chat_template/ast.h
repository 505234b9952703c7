// The syntax tree of a compiled chat template. Built once by the parser,
// immutable afterwards, shared by every render (read-only, so thread-safe).
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_AST_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/chat_template/value.h"

namespace moe::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // literal
    kName,      // name
    kList,      // args: items
    kTuple,     // args: items (evaluates to a list)
    kDict,      // args: key, value, key, value, ...
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null Expr for an absent bound)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is [not] name(args[1..]); negated
    kNot,       // not args[0]
    kNeg,       // -args[0]
    kPos,       // +args[0]
    kBinary,    // args[0] <name> args[1]: + - * / // % ** ~
    kAnd,       // args[0] and args[1]
    kOr,        // args[0] or args[1]
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
    kCondExpr,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  };

  Kind kind = Kind::kLiteral;
  int line = 0;
  std::shared_ptr<const Json> literal;  // kLiteral
  std::string name;                     // name / attribute / filter / test / operator
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", "<=", ">", ">=", "in", "not in"
  bool negated = false;          // kTest
};

struct Stmt;
using Body = std::vector<Stmt>;

struct IfBranch {
  ExprPtr condition;
  Body body;
};

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches (if / elif...), else_body
    kFor,       // for targets in expr [if filter] body [else else_body]
    kSet,       // set targets = expr
    kSetAttr,   // set targets[0].attribute = expr (namespace)
    kSetBlock,  // set targets[0] %}body{% endset (filters applied from `filters`)
    kBreak,
    kContinue,
    kGeneration,  // {% generation %}body{% endgeneration %}: renders body
  };

  Kind kind = Kind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  std::vector<std::string> targets;
  std::string attribute;
  ExprPtr filter;  // kFor: the `if` condition
  // kSetBlock: filters applied to the captured text, each a kFilter whose
  // args[0] is null (the text).
  std::vector<ExprPtr> filters;
  std::vector<IfBranch> branches;
  Body body;
  Body else_body;
};

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_AST_H_
