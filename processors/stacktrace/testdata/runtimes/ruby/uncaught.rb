# An uncaught exception with a cause: Ruby prints the message, the backtrace as
# "from" lines and the cause after it.
$stdout.sync = true

class PaymentError < StandardError; end

def authorize(amount)
  Integer("x#{amount}")
end

def charge(amount)
  authorize(amount)
rescue ArgumentError
  raise PaymentError, "charge failed for order 42"
end

puts "INFO before crash"
charge(42)
